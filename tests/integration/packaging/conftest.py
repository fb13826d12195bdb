"""The host app under host_app/ is a project of its own: its tests run in its own venv."""

collect_ignore_glob = ["host_app/*"]
