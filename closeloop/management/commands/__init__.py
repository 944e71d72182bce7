"""`manage.py` commands: runworker, seed_demo, import_csv, create_api_key, ensure_admin,
prepare_models."""
