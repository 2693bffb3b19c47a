"""The APS 2 connector: lifecycle services (app, tenants, users, events), async jobs and the controller."""
