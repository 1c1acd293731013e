"""Every action_id and callback_id the bot uses, in one place."""

# Buttons
OPEN_READY_MODAL = "open_ready_modal"  # value: story key
OPEN_DONE_MODAL = "open_done_modal"  # value: story key
OPEN_STORY_EDIT = "open_story_edit"  # value: story key
OPEN_STORY_ADD = "open_story_add"
MARK_DONE = "mark_story_done"  # value: story key
OPEN_PLAN_VIEW = "open_plan_view"  # value: team name
STORY_LIST_PAGE = "story_list_page"  # value: JSON {"page": n, "filters": {...}}

# Modals
STORY_MODAL = "story_modal"
CRITERIA_MODAL = "criteria_modal"

# Input blocks inside modals (block_id == field name, so service errors land on the right field)
FIELD_TITLE = "title"
FIELD_TYPE = "type"
FIELD_OWNER = "owner"
FIELD_POINTS = "points"
FIELD_SPRINT = "sprint"
FIELD_REASON = "reason"  # the story form: why a not-Ready story goes into the sprint anyway (leads)
CRITERION_PREFIX = "criterion:"
INPUT = "input"  # action_id of the element inside each input block

# Standups
OPEN_STANDUP_MODAL = "open_standup_modal"  # value: ceremony_run id
STANDUP_MODAL = "standup_modal"
FIELD_YESTERDAY = "yesterday"
FIELD_TODAY = "today"
FIELD_BLOCKERS = "blockers"
FIELD_LINKS = "links"

# Governance reviews
REVIEW_APPROVE = "review_approve"  # value: review key
REVIEW_REQUEST_CHANGES = "review_request_changes"
REVIEW_REJECT = "review_reject"
REVIEW_DECISION_MODAL = "review_decision_modal"
FIELD_RATIONALE = "rationale"

# Drift incidents (value: incident key; the snooze menu's option values are "<key>|<1h|24h|resolved>")
REVIEW_POST = "review_post"  # under a sprint-review preview: post it to the team channel
DRIFT_ACK = "drift_ack"
DRIFT_SNOOZE = "drift_snooze"
DRIFT_STORY = "drift_story"
DRIFT_RUNBOOK = "drift_runbook"  # a link button: Slack still sends the click, which is only acknowledged
