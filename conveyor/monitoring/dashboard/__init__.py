"""The web dashboard: `create_app` in app.py; security.py guards it; live.py streams."""
