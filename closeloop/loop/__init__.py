"""The follow-up: intake and triage of answers, cases and their actions, SLA, notify,
outreach, customer replies."""
