"""mitmproxy addons for the local rig and end-to-end tests (run by mitmdump; never imported by the app)."""
