"""Billing: metered usage per tenant and day, versioned rate cards, and monthly invoices exact to the cent."""
