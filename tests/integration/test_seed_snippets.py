"""The seed's "Getting Started" and "Monitoring" snippets, run as written.

(`from .infrastructure.x` reads `from ads_infra.x`; the component snippets are
tested beside their components: cache, storage, services, repositories, database.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with the repository's config.yml and no ADS_* backends set."""
    shutil.copy(REPO / "config.yml", tmp_path / "config.yml")
    monkeypatch.chdir(tmp_path)
    for name in ("ADS_DATABASE_URL", "ADS_CACHE_TYPE", "ADS_STORAGE_TYPE", "ADS_STORAGE_PATH"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


async def test_basic_setup_and_domain_integration(project_dir: Path) -> None:
    from ads_infra import (
        CacheManager,
        DatabaseManager,
        ExternalServiceManager,
        FileStorageManager,
        RepositoryFactory,
    )

    # Initialize components
    db_manager = DatabaseManager()
    storage_manager = FileStorageManager()
    cache_manager = CacheManager()
    service_manager = ExternalServiceManager()
    repo_factory = RepositoryFactory(db_manager)

    from ads_infra.domain.services import AdService

    ads_repo = repo_factory.create_ads_repository()
    ad_service = AdService(ads_repo)

    # No migration step: the embedded SQLite database gets its schema on first use.
    assert (await ad_service.list_ads(user_id=456)).items == []  # empty, scoped

    # Monitoring and Statistics
    pool_stats = await db_manager.get_pool_stats()
    print(f"Active connections: {pool_stats['active_connections']}")
    await cache_manager.set("k", "v")
    assert await cache_manager.get("k") == "v"
    cache_stats = await cache_manager.get_stats()
    print(f"Hit rate: {cache_stats['hit_rate']:.2%}")
    storage_stats = await storage_manager.get_storage_stats()
    print(f"Total files: {storage_stats['total_files']}")
    assert (pool_stats["active_connections"], cache_stats["hit_rate"]) == (0, 1.0)
    assert storage_stats["total_files"] == 0

    await service_manager.close()
    await storage_manager.close()
    await cache_manager.close()
    await db_manager.close()
    assert db_manager.config.url == "sqlite+aiosqlite:///./var/ads.db"  # the embedded default
    assert (project_dir / "var" / "ads.db").exists()


async def test_run_demo(project_dir: Path) -> None:
    from ads_infra.infrastructure_demo import InfrastructureSystemDemo

    # Run comprehensive demo
    demo = InfrastructureSystemDemo()
    report = await demo.run_comprehensive_demo()
    assert report["seed"]["performance_rows"] == 54 * 90
    assert (project_dir / "var" / "ads.db").exists()
