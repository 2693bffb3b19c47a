"""The APS controller simulator: signs requests exactly as the controller does, runs scenarios, serves
a minimal /aps/2/resources API that verifies the connector's signed callbacks."""
