"""Who is calling: transport stages (OAuth 1.0), the end user (X-CyberApp-Auth), their identities."""
