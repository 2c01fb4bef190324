"""Generated artefacts: the ValidatingAdmissionPolicies, the webhook
configuration, the JSON Schemas and the rule table. Pure: builds objects and text.

May import `model`, `rules` and `decide.admission` (the schema of a review)."""
