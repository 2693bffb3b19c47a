"""The Tornado layer: handlers, the application factory and the server entry point."""
