"""connector: one sales funnel, true across Salesforce, vtiger CRM and marketing segments."""
