"""The demo's connector.yaml: the same shape an admin writes, pointed at the loopback sandboxes."""

from __future__ import annotations

# written beside the demo's connector.yaml (what `connector schema` prints), so editors check the file offline
SCHEMA_FILE = "connector.schema.json"

DEMO_CONFIG = """\
# yaml-language-server: $schema=connector.schema.json
# Written by `connector demo`: the main job against the loopback sandboxes and files in this directory.
state:
  path: state.sqlite

stage_model:
  preset: default

# is the funnel full enough? the open deals per stage, weighted by the preset's chances, against this target
pipeline:
  target: 250000
  period: quarter
  warn_below: 0.5

identity:
  merge_on: [email, external_id]
  source_priority: [sf_prod, vt_main]

sources:
  - name: sf_prod
    type: salesforce
    auth: password
    login_url: {sf_login_url}
    api_version: "59.0"
    env_prefix: SF_
    ca_bundle: {sf_ca_bundle}
    objects:
      Lead:
        fields: {{Email: email, FirstName: first_name, LastName: last_name, Company: company, Status: lead_status,
                 HasOptedOutOfEmail: opted_out}}
        value_maps:
          lead_status: {{"Open - Not Contacted": new, "Working - Contacted": working,
                        "Closed - Converted": converted, "Closed - Not Converted": qualified_out}}
      Contact:
        fields: {{Email: email, FirstName: first_name, LastName: last_name, HasOptedOutOfEmail: opted_out,
                 Account.Name: company}}
      Opportunity:
        kind: opportunity
        fields: {{StageName: opportunity_stage_raw, Amount: opportunity_amount, CloseDate: opportunity_close_date}}
        value_maps:   # the org says which stages are closed / won; which open ones mean "a quote went out" is ours
          opportunity_stage: {{"Proposal/Price Quote": proposal, "Negotiation/Review": proposal}}
      Contract:
        kind: contract
        fields: {{StartDate: contract_start, EndDate: contract_end}}

  - name: vt_main
    type: vtiger
    url: {vt_url}
    env_prefix: VTIGER_
    modules:
      Leads:
        fields: {{email: email, firstname: first_name, lastname: last_name, company: company, leadstatus: lead_status,
                 emailoptout: opted_out}}
      Contacts:
        fields: {{email: email, firstname: first_name, lastname: last_name, emailoptout: opted_out}}
      Potentials:
        kind: opportunity
        fields: {{sales_stage: opportunity_stage_raw, amount: opportunity_amount, closingdate: opportunity_close_date}}
      ServiceContracts:
        kind: contract
        fields: {{start_date: contract_start, due_date: contract_end}}

  - name: competitor_contracts
    type: file
    path: files/competitor_contracts.csv
    kind: contract
    join: email
    fields: {{E-mail: email, Provider: competitor, Einddatum: contract_end}}
    date_formats: ["%d-%m-%Y"]

  - name: web_visits
    type: file
    path: files/web_visits.jsonl
    kind: enrichment
    join: email
    fields: {{email: email, visits: web_visits, last_visit: last_visit}}

  - name: reviews
    type: file
    path: files/reviews.xlsx
    kind: enrichment
    join: email
    fields: {{email: email, score: review_score}}

  - name: revisits               # sales' revisit dates: a sales decision, like a lead status
    type: file
    path: files/revisits.csv
    kind: enrichment
    join: email
    role: sales
    fields: {{E-mail: email, Revisit: nurture_until}}

targets:
  - name: sf_out
    type: salesforce
    source: sf_prod
    label_field: {{Lead: Funnel_Stage__c, Contact: Funnel_Stage__c}}
    campaigns:
      renewal-2027: {{campaign: "Renewal 2027", member_status: Sent, create: true}}
      win-back: {{campaign: "Win-back", member_status: Sent, create: true}}

  - name: vt_out
    type: vtiger
    source: vt_main
    label_field: {{Leads: "label:Funnel stage", Contacts: "label:Funnel stage"}}
    segments_field: {{Leads: "label:Segments", Contacts: "label:Segments"}}
    concurrency: 4
    campaigns:
      renewal-2027: {{campaign: "Renewal 2027", create: true, closingdate: "2027-12-31"}}
      win-back: {{campaign: "Win-back", create: true, closingdate: "2027-12-31"}}

  - name: marketing_files
    type: segment_files
    directory: segments

segments:
  - name: renewal-2027
    description: customers whose contract ends within 90 days
    when:
      all:
        - {{field: opportunity_won, eq: true}}
        - {{field: contract_end, within_days: {{from: 0, to: 90}}}}
    targets: [sf_out, vt_out, marketing_files]
  - name: win-back
    description: people whose contract with a competitor ends within six months
    when: {{field: competitor_contract_end, within_days: {{from: 0, to: 180}}}}
    targets: [sf_out, vt_out, marketing_files]
  - name: nurture-newsletter
    when: {{field: stage, eq: nurture}}
    targets: [marketing_files]
  - name: ambassadors
    when: {{field: stage, eq: ambassador}}
    targets: [marketing_files]

# a Salesforce Task and a vtiger task on the person's record when the revisit date sales set arrives
tasks:
  - name: nurture-revisit
    trigger: {{nurture_until: reached}}
    create:
      subject: "Revisit {{{{ first_name }}}} {{{{ last_name }}}} ({{{{ company }}}})"
      description: "Sales parked {{{{ first_name }}}} until {{{{ occurrence }}}}; stage now {{{{ label }}}}."
      due_in_days: 3
"""


# Beside the demo's config: the same job pointed at sandboxes a user starts with `connector sandbox salesforce`
# and `connector sandbox vtiger`, through the variables they print; its own state and segment folder, as the
# records of those sandboxes are not the demo's.
RERUN_CONFIG_FILE = "connector.sandbox.yaml"


def rerun_config() -> str:
    text = DEMO_CONFIG.format(
        sf_login_url="${SF_LOGIN_URL}", sf_ca_bundle="${SF_CA_BUNDLE}", vt_url="${VTIGER_URL}"
    )
    edits = (
        (
            "# Written by `connector demo`: the main job against the loopback sandboxes and files in this directory.",
            "# Written by `connector demo`: the demo's job against `connector sandbox salesforce` and `connector sandbox\n"
            "# vtiger` (export the lines each prints first), with the files in this directory.",
        ),
        ("  path: state.sqlite", "  path: sandbox-state.sqlite"),
        ("    directory: segments", "    directory: sandbox-segments"),
    )
    for old, new in edits:
        assert text.count(old) == 1, f"the demo config no longer holds {old!r}"
        text = text.replace(old, new)
    return text
