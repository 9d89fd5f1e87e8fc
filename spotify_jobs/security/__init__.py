"""Security and compliance scan: Kubernetes posture, personal data and secrets in tenant files, tenant
isolation and backup evidence, and a per-framework compliance report per tenant and day."""
