"""AdService refuses generated copy with a blank headline or description: nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from ads_infra.domain.entities import Ad
from ads_infra.domain.errors import ValidationError
from ads_infra.domain.ports import AdCopy, CopyBrief
from ads_infra.domain.services import AdService


class FixedWriter:
    def __init__(self, headline: str, description: str) -> None:
        self.copy = AdCopy(headline=headline, description=description, provider="p", model="m")

    async def write_copy(self, brief: CopyBrief) -> AdCopy:
        return self.copy


class RecordingAds:
    """Only what create_ad_with_copy reaches: create()."""

    def __init__(self) -> None:
        self.created: list[Ad] = []

    async def create(self, ad: Ad) -> Ad:
        self.created.append(ad)
        return ad


@pytest.mark.parametrize(
    ("headline", "description", "field"),
    [("Run Further", "", "description"), ("", "Trail shoes with grip.", "headline"),
     ("Run Further", "   ", "description")],
)  # fmt: skip
async def test_blank_generated_copy_is_refused_and_no_ad_is_created(
    headline: str, description: str, field: str
) -> None:
    ads = RecordingAds()
    service = AdService(ads, copywriter=FixedWriter(headline, description))  # type: ignore[arg-type]
    ad = Ad(user_id=1, campaign_id=1, group_id=1, name="A")
    with pytest.raises(ValidationError, match="nothing was stored") as err:
        await service.create_ad_with_copy(ad, CopyBrief(product="Trail shoes"))
    assert err.value.field == field
    assert ads.created == []


async def test_complete_copy_is_created() -> None:
    ads = RecordingAds()
    writer: Any = FixedWriter("Run Further", "Trail shoes with grip.")
    service = AdService(ads, copywriter=writer)  # type: ignore[arg-type]
    ad = Ad(user_id=1, campaign_id=1, group_id=1, name="A")
    created = await service.create_ad_with_copy(ad, CopyBrief(product="Trail shoes"))
    assert (created.headline, created.description) == ("Run Further", "Trail shoes with grip.")
    assert len(ads.created) == 1
