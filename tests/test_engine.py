"""The stage engine: rules in order, the movement policy, re-entry windows around as-of, and reasons."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spine_helpers import AS_OF, days, make_person, preset_engine, preset_model

from connector.engine import Decision, Previous, StageEngine


@pytest.fixture(scope="module")
def engine() -> StageEngine:
    return preset_engine("default")


# ---- the default model (seed 001) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "stage", "rule", "signal"),
    [
        ({}, "suspect", None, None),
        ({"lead_status": "new"}, "suspect", None, None),
        ({"lead_status": "Working"}, "lead", "interest", "lead_status='Working'"),
        ({"web_visits": 3}, "lead", "interest", "web_visits=3 (web_visits >= 3)"),
        ({"web_visits": 2}, "suspect", None, None),
        ({"newsletter": True}, "lead", "interest", "newsletter=True"),
        ({"last_visit": days(-30)}, "lead", "interest", "last_visit=2026-10-24"),
        ({"last_visit": days(-31)}, "suspect", None, None),
        (
            {"competitor_contract_end": days(100)},
            "lead",
            "competitor-contract-ending",
            "competitor_contract_end",
        ),
        ({"lead_status": "qualified"}, "prospect", "qualified", "lead_status='qualified'"),
        ({"converted": True}, "prospect", "qualified", "converted=True"),
        ({"opportunity_open": True}, "prospect", "qualified", "opportunity_open=True"),
        (
            {"opportunity_stage": "proposal", "opportunity_open": True},
            "opportunity",
            "quote-sent",
            "proposal",
        ),
        ({"opportunity_won": True}, "customer", "customer", "opportunity_won=True"),
        ({"contract_end": days(400)}, "customer", "customer", "contract_end=2027-12-28"),
        ({"opportunity_won": True, "review_score": 9.0}, "ambassador", "ambassador", "review_score=9.0"),
        ({"opportunity_won": True, "review_score": 8.9}, "customer", "customer", "opportunity_won=True"),
        (
            {"lead_status": "qualified_out", "opportunity_won": True},
            "qualified_out",
            "qualified-out",
            "lead_status",
        ),
        ({"opportunity_lost": True}, "lost", "lost-deal", "opportunity_lost=True"),
        ({"lead_status": "nurture"}, "nurture", "nurture", "lead_status='nurture'"),
    ],
)
def test_default_preset_assigns_stage_rule_and_signals(
    engine: StageEngine, values: dict[str, Any], stage: str, rule: str | None, signal: str | None
) -> None:
    decision = engine.decide(make_person(**values), None, AS_OF)
    assert (decision.stage, decision.rule) == (stage, rule)
    if signal is None:
        assert decision.matched == []
    else:
        assert any(signal in m for m in decision.matched), decision.matched
    assert not decision.held


def test_first_rule_that_holds_decides(engine: StageEngine) -> None:
    # qualified out comes before every path rule: a sales "no" wins over a won deal and web visits
    decision = engine.decide(
        make_person(lead_status="qualified_out", web_visits=10, opportunity_won=True), None, AS_OF
    )
    assert decision.rule == "qualified-out"
    assert decision.matched == ["lead_status='qualified_out' (lead_status == 'qualified_out')"]


def test_any_reports_only_the_branch_that_held(engine: StageEngine) -> None:
    decision = engine.decide(make_person(web_visits=4, newsletter=False), None, AS_OF)
    assert decision.matched == ["web_visits=4 (web_visits >= 3)"]


# ---- the other presets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "stage", "rule"),
    [
        ({}, "suspect", None),
        ({"lead_status": "working"}, "prospect", "contact-happened"),
        ({"competitor_contract_end": days(10)}, "prospect", "contact-happened"),
        ({"opportunity_stage": "proposal"}, "lead", "proposal-discussed"),
        ({"opportunity_won": True}, "customer", "customer"),
        ({"opportunity_won": True, "contract_end": days(30)}, "lead", "contract-renewal"),
        ({"opportunity_lost": True}, "lost", "lost-deal"),
    ],
)
def test_journey_004_vocabulary(values: dict[str, Any], stage: str, rule: str | None) -> None:
    engine = preset_engine("journey_004")
    decision = engine.decide(make_person(**values), None, AS_OF)
    assert (decision.stage, decision.rule) == (stage, rule)


def test_journey_004_orders_prospect_before_lead() -> None:
    model = preset_model("journey_004")
    assert model.path == ["suspect", "prospect", "lead", "customer"]
    engine = StageEngine(model)
    # a lead (proposal discussed) with only a "contact happened" signal now stays a lead
    decision = engine.decide(make_person(lead_status="working"), Previous("lead", "lead"), AS_OF)
    assert (decision.stage, decision.proposed, decision.held) == ("lead", "prospect", True)


@pytest.mark.parametrize(
    ("values", "stage", "rule"),
    [
        ({}, "awareness", None),
        ({"newsletter": True}, "consideration", "consideration"),
        ({"opportunity_open": True}, "evaluation", "evaluation"),
        ({"opportunity_won": True, "won_date": days(-10)}, "purchase", "purchase"),
        ({"opportunity_won": True, "won_date": days(-31)}, "experience", "experience"),
        ({"opportunity_won": True, "won_date": days(-366)}, "loyalty", "loyalty"),
        ({"opportunity_won": True, "won_date": days(-365)}, "experience", "experience"),
        ({"opportunity_won": True, "review_score": 10}, "bond", "bond"),
        ({"opportunity_won": True, "contract_end": days(90)}, "evaluation", "renewal"),
    ],
)
def test_journey_002_vocabulary(values: dict[str, Any], stage: str, rule: str | None) -> None:
    engine = preset_engine("journey_002")
    decision = engine.decide(make_person(**values), None, AS_OF)
    assert (decision.stage, decision.rule) == (stage, rule)


# ---- movement policy ----------------------------------------------------------------------------------


def test_forward_only_holds_a_prospect_with_weaker_signals(engine: StageEngine) -> None:
    decision = engine.decide(make_person(web_visits=5), Previous("prospect", "prospect"), AS_OF)
    assert decision.stage == "prospect"
    assert decision.path_stage == "prospect"
    assert decision.proposed == "lead"
    assert decision.rule == "interest"
    assert decision.held is True
    assert decision.reentry is False
    assert "held at prospect" in decision.reason()
    assert "forward-only" in decision.reason()


def test_no_rule_holds_keeps_a_known_person_where_they_were(engine: StageEngine) -> None:
    decision = engine.decide(make_person(), Previous("opportunity", "opportunity"), AS_OF)
    assert (decision.stage, decision.rule, decision.proposed, decision.held) == (
        "opportunity",
        None,
        "suspect",
        True,
    )


def test_moving_forward_is_not_held(engine: StageEngine) -> None:
    decision = engine.decide(make_person(opportunity_won=True), Previous("lead", "lead"), AS_OF)
    assert (decision.stage, decision.held, decision.reentry) == ("customer", False, False)


def test_forward_only_off_lets_a_person_move_back() -> None:
    engine = preset_engine("default", forward_only=False)
    decision = engine.decide(make_person(web_visits=5), Previous("prospect", "prospect"), AS_OF)
    assert (decision.stage, decision.path_stage, decision.held) == ("lead", "lead", False)


@pytest.mark.parametrize("previous", ["suspect", "prospect", "customer", "ambassador", "nurture", "lost"])
def test_detours_are_entered_from_any_stage(engine: StageEngine, previous: str) -> None:
    path_stage = previous if previous in ("suspect", "prospect", "customer", "ambassador") else "lead"
    decision = engine.decide(make_person(lead_status="qualified_out"), Previous(previous, path_stage), AS_OF)
    assert decision.stage == "qualified_out"
    assert decision.path_stage == path_stage  # the furthest path stage is remembered
    assert decision.held is False


def test_the_way_back_from_a_detour_holds_at_the_furthest_path_stage(engine: StageEngine) -> None:
    parked = engine.decide(make_person(nurture_until=days(10)), Previous("opportunity", "opportunity"), AS_OF)
    assert (parked.stage, parked.path_stage) == ("nurture", "opportunity")
    back = engine.decide(
        make_person(nurture_until=days(-1), web_visits=5),
        Previous(parked.stage, parked.path_stage),
        AS_OF,
    )
    assert (back.stage, back.path_stage, back.proposed, back.held) == (
        "opportunity",
        "opportunity",
        "lead",
        True,
    )


def test_leaving_a_detour_forward_moves_on(engine: StageEngine) -> None:
    decision = engine.decide(make_person(opportunity_won=True), Previous("nurture", "prospect"), AS_OF)
    assert (decision.stage, decision.path_stage, decision.held) == ("customer", "customer", False)


def test_a_detour_without_a_path_stage_leaves_to_whatever_the_rules_say(engine: StageEngine) -> None:
    decision = engine.decide(make_person(web_visits=5), Previous("qualified_out", None), AS_OF)
    assert (decision.stage, decision.held) == ("lead", False)


def test_previous_on_the_path_without_path_stage_counts_as_its_path_stage(engine: StageEngine) -> None:
    decision = engine.decide(make_person(web_visits=5), Previous("customer", None), AS_OF)
    assert (decision.stage, decision.held) == ("customer", True)


# ---- nurture with a revisit date -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("revisit", "stage"),
    [(days(-1), "prospect"), (days(0), "nurture"), (days(30), "nurture")],
)
def test_nurture_until_the_revisit_date(engine: StageEngine, revisit: dt.date, stage: str) -> None:
    decision = engine.decide(
        make_person(lead_status="nurture", nurture_until=revisit), Previous("nurture", "prospect"), AS_OF
    )
    assert decision.stage == stage
    if stage == "prospect":
        assert decision.held  # no rule holds any more: back to the furthest path stage, not to suspect
    else:
        assert decision.rule == "nurture"
        assert any("nurture_until" in m for m in decision.matched)


# ---- renewal and win-back windows around as-of ---------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "stage", "rule"),
    [
        (-1, "lost", "churned"),  # ended yesterday, nothing open
        (0, "opportunity", "contract-renewal"),
        (90, "opportunity", "contract-renewal"),
        (91, "customer", "customer"),
    ],
)
def test_renewal_window_edges(engine: StageEngine, offset: int, stage: str, rule: str) -> None:
    person = make_person(opportunity_won=True, contract_end=days(offset))
    decision = engine.decide(person, Previous("customer", "customer"), AS_OF)
    assert (decision.stage, decision.rule) == (stage, rule)
    if rule == "contract-renewal":
        assert decision.reentry is True
        assert decision.held is False
        assert decision.path_stage == "opportunity"
        assert "re-entry rule moves back along the path" in decision.reason()
        assert f"contract_end={days(offset).isoformat()}" in " ".join(decision.matched)


def test_renewal_window_moves_with_the_as_of_date(engine: StageEngine) -> None:
    person = make_person(opportunity_won=True, contract_end=days(120))
    assert engine.decide(person, Previous("customer", "customer"), AS_OF).stage == "customer"
    later = AS_OF + dt.timedelta(days=30)
    decision = engine.decide(person, Previous("customer", "customer"), later)
    assert (decision.stage, decision.reentry) == ("opportunity", True)


def test_renewal_for_a_new_person_is_not_a_reentry(engine: StageEngine) -> None:
    decision = engine.decide(make_person(opportunity_won=True, contract_end=days(5)), None, AS_OF)
    assert (decision.stage, decision.reentry) == ("opportunity", False)


@pytest.mark.parametrize(
    ("offset", "stage", "rule"),
    [
        (-1, "lost", "lost-deal"),
        (0, "suspect", "win-back"),
        (180, "suspect", "win-back"),
        (181, "lost", "lost-deal"),
    ],
)
def test_win_back_for_a_lost_person(engine: StageEngine, offset: int, stage: str, rule: str) -> None:
    person = make_person(opportunity_lost=True, competitor_contract_end=days(offset))
    decision = engine.decide(person, Previous("lost", "opportunity"), AS_OF)
    assert (decision.stage, decision.rule) == (stage, rule)
    if stage == "suspect":
        assert decision.reentry is True
        assert decision.path_stage == "suspect"


def test_win_back_is_the_only_way_back_from_lost(engine: StageEngine) -> None:
    # without the competitor window the interest rule only proposes lead, and lost-deal still holds first
    decision = engine.decide(
        make_person(opportunity_lost=True, web_visits=9), Previous("lost", "opportunity"), AS_OF
    )
    assert decision.stage == "lost"


# ---- reasons ------------------------------------------------------------------------------------------


def test_reason_of_the_default_stage() -> None:
    decision = Decision("suspect", "suspect", None, "suspect")
    assert decision.reason() == "no rule held: default stage proposed suspect"


def test_reason_names_rule_signals_and_policy() -> None:
    decision = Decision(
        "prospect", "prospect", "interest", "lead", ["web_visits=5 (web_visits >= 3)"], held=True
    )
    assert decision.reason() == (
        "rule interest proposed lead [web_visits=5 (web_visits >= 3)]; held at prospect "
        "(forward-only: never back along the path without a re-entry rule)"
    )
    assert decision.to_json() == {
        "stage": "prospect",
        "path_stage": "prospect",
        "rule": "interest",
        "proposed": "lead",
        "matched": ["web_visits=5 (web_visits >= 3)"],
        "held": True,
        "reentry": False,
    }


def test_explain_rules_lists_every_rule_in_order(engine: StageEngine) -> None:
    lines = engine.explain_rules()
    assert [line.split(" ->")[0] for line in lines] == [r.name for r in engine.model.rules]
    assert lines[2].startswith("contract-renewal -> opportunity (re-entry): all(")


def test_rules_may_read_the_previous_stage() -> None:
    rules = [
        {"name": "stay", "stage": "customer", "when": {"field": "previous_stage", "eq": "customer"}},
    ]
    engine = preset_engine("default", rules=rules)
    assert engine.decide(make_person(), Previous("customer", "customer"), AS_OF).rule == "stay"
    assert engine.decide(make_person(), None, AS_OF).rule is None


# ---- property: without re-entry rules the path rank never decreases -------------------------------------

SIGNALS = st.fixed_dictionaries(
    {},
    optional={
        "lead_status": st.sampled_from(
            ["new", "working", "nurture", "qualified", "qualified_out", "converted"]
        ),
        "web_visits": st.integers(0, 6),
        "opportunity_open": st.booleans(),
        "opportunity_stage": st.sampled_from(["open", "proposal", "won", "lost"]),
        "opportunity_won": st.booleans(),
        "opportunity_lost": st.booleans(),
        "review_score": st.sampled_from([5.0, 9.0]),
        "contract_end": st.integers(-200, 200).map(days),
        "competitor_contract_end": st.integers(-200, 200).map(days),
        "nurture_until": st.integers(-10, 10).map(days),
    },
)


@settings(max_examples=150, deadline=None)
@given(st.lists(SIGNALS, min_size=1, max_size=12))
def test_path_rank_never_decreases_without_reentry_rules(sequence: list[dict[str, Any]]) -> None:
    model = preset_model("default")
    model = model.model_copy(update={"rules": [r for r in model.rules if not r.reentry]})
    engine = StageEngine(model)
    previous: Previous | None = None
    best = -1
    for values in sequence:
        decision = engine.decide(make_person(**values), previous, AS_OF)
        if decision.path_stage is not None:
            rank = model.rank(decision.path_stage)
            assert rank is not None
            assert rank >= best, (previous, decision)
            best = rank
        else:
            assert best == -1  # a path stage once reached is never forgotten
        if decision.stage in model.path:
            assert decision.stage == decision.path_stage
        assert decision.reentry is False
        previous = Previous(decision.stage, decision.path_stage)
