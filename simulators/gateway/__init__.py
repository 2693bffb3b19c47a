"""The Acronis API Callback Gateway simulator: callbacks with a Bearer JWT signed by the Acronis API
simulator's keys, X-CyberApp-Auth and X-CyberApp-Extra, one at a time or as verification scenarios."""
