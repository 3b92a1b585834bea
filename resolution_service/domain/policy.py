"""The compensation policy engine (补偿政策): versioned rules as data, proposals with reasons.

The rules live in `resolution_service/policy/compensation-v<N>.json`, validated when loaded
(a bad file is refused with the rule and field named). A policy groups its rules in three
kinds of remedy: `goods` (refund, return, exchange, repair, reship or a rejection),
`compensation` (coupons, balance credit) and `gesture` (apology, explanation). In each group
the first rule whose conditions hold is applied and the later ones are not: the order of the
file is the precedence (expired goods before product quality in general). A proposal holds
at most one goods remedy.

Every proposal records the policy version, each rule applied with its reason, each cap that
cut an amount, who pays each cost (from the responsibility, see `ledger`) and whether a
supervisor must approve it, with the reasons: more money than the approval limit of the
person proposing, a flagged account, or goodwill above what an agent may grant alone.

Goodwill (an agent's or supervisor's gesture beyond the standard, like the 200-yuan coupon
the domain's crushed-parcel example gives where the policy's standard is 50) replaces the
compensation the rules computed; above the policy's goodwill ceiling it needs approval, and
the platform bears it.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from resolution_service.domain.ledger import Responsibility, assign_payers
from resolution_service.domain.remedies import (
    COMPENSATION_KINDS,
    GESTURE_KINDS,
    GOODS_KINDS,
    ORIGINAL_PAYMENT_METHOD,
    Party,
    Remedy,
    RemedyKind,
    RemedySource,
    money,
    total,
)

DEFAULT_POLICY_VERSION = "compensation-v1"
POLICY_PACKAGE = "resolution_service"
POLICY_FOLDER = "policy"
_RULE_ID = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$"
_REFUND_KINDS = frozenset({RemedyKind.REFUND, RemedyKind.RETURN_AND_REFUND})
_VALUE_OF_GOODS_KINDS = frozenset({RemedyKind.EXCHANGE, RemedyKind.REPAIR, RemedyKind.RESHIP})


class PolicyError(ValueError):
    """A policy file that cannot be trusted, or facts the policy cannot price."""


class RuleGroup(StrEnum):
    """The kinds of remedy a rule gives; one rule applies per group."""

    GOODS = "goods"
    COMPENSATION = "compensation"
    GESTURE = "gesture"


GROUP_KINDS: Mapping[RuleGroup, frozenset[RemedyKind]] = {
    RuleGroup.GOODS: GOODS_KINDS,
    RuleGroup.COMPENSATION: COMPENSATION_KINDS,
    RuleGroup.GESTURE: GESTURE_KINDS,
}


class Concession(StrEnum):
    """What a supervisor may add in mediation beyond a better coupon."""

    REFUND = "refund"
    FREE_RETURN_PICKUP = "free_return_pickup"


# --- The file's form -----------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RemedyTemplate(_Strict):
    """A remedy as a rule states it: amounts fixed, per cent of the order, or the whole order."""

    kind: RemedyKind
    amount: Decimal | None = Field(default=None, ge=0)
    whole_order: bool = False
    percent_of_order: Decimal | None = Field(default=None, gt=0, le=100)
    cap: Decimal | None = Field(default=None, gt=0)
    coupon_threshold: Decimal | None = Field(default=None, ge=0)
    valid_days: int | None = Field(default=None, ge=1)
    earliest_business_days: int | None = Field(default=None, ge=0)
    within_business_days: int | None = Field(default=None, ge=1)
    within_hours: int | None = Field(default=None, ge=1)
    refund_within_days_of_return: int | None = Field(default=None, ge=1)
    return_shipping_paid_by: Party | None = None
    pickup: bool = False
    # The customer's demands (refund, return, reship...) this option answers.
    answers: tuple[str, ...] = ()
    text: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        kind = self.kind
        sources = [self.amount is not None, self.whole_order, self.percent_of_order is not None]
        if kind in _REFUND_KINDS | COMPENSATION_KINDS and sum(sources) != 1:
            raise ValueError(f"{kind} needs one of amount, whole_order, percent_of_order")
        if kind in GESTURE_KINDS | {RemedyKind.REJECTION} and any(sources):
            raise ValueError(f"{kind} carries no amount")
        if kind in _VALUE_OF_GOODS_KINDS and sum(sources) > 1:
            raise ValueError(f"{kind}: give at most one of amount, whole_order, percent_of_order")
        if self.cap is not None and self.percent_of_order is None:
            raise ValueError("cap applies to percent_of_order only")
        if kind in COMPENSATION_KINDS - {RemedyKind.BALANCE_CREDIT} and self.valid_days is None:
            raise ValueError(f"{kind} needs valid_days")
        if kind is RemedyKind.REJECTION and not (self.text and self.text.strip()):
            raise ValueError("a rejection needs its explanation in text")
        returns = (self.refund_within_days_of_return, self.return_shipping_paid_by, self.pickup)
        if kind is not RemedyKind.RETURN_AND_REFUND and any(returns):
            raise ValueError(f"return fields belong to return_and_refund, not {kind}")
        if (
            self.earliest_business_days is not None
            and self.within_business_days is not None
            and self.earliest_business_days > self.within_business_days
        ):
            raise ValueError("earliest_business_days is after within_business_days")
        return self


class Conditions(_Strict):
    """When a rule applies: every condition given must hold (none given: always)."""

    categories: tuple[str, ...] = ()
    subcategories: tuple[str, ...] = ()
    responsibilities: tuple[Responsibility, ...] = ()
    after_sales_reasons: tuple[str, ...] = ()
    # Strictly more than this many days past the promised delivery.
    delay_days_over: Decimal | None = Field(default=None, ge=0)
    within_no_reason_window: bool | None = None
    returnable_without_reason: bool | None = None


class Rule(_Strict):
    """One rule: when it applies, why, and the remedies (or the options) it gives."""

    id: str = Field(pattern=_RULE_ID)
    group: RuleGroup
    reason: str = Field(min_length=1)
    when: Conditions = Conditions()
    remedies: tuple[RemedyTemplate, ...] = ()
    # One of these is chosen by the customer's demands, else the default.
    options: tuple[RemedyTemplate, ...] = ()
    default_option: RemedyKind | None = None
    # The rule applies and gives nothing (it stops later rules of its group).
    no_remedy: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        given = [bool(self.remedies), bool(self.options), self.no_remedy]
        if sum(given) != 1:
            raise ValueError(f"rule {self.id!r} needs exactly one of remedies, options, no_remedy")
        templates = self.remedies + self.options
        wrong = sorted({t.kind for t in templates} - GROUP_KINDS[self.group])
        if wrong:
            raise ValueError(f"rule {self.id!r} ({self.group}) cannot give {', '.join(wrong)}")
        if self.group is RuleGroup.GOODS and len(self.remedies) > 1:
            raise ValueError(f"rule {self.id!r} gives more than one goods remedy")
        if self.options:
            kinds = [option.kind for option in self.options]
            if len(set(kinds)) != len(kinds):
                raise ValueError(f"rule {self.id!r} lists an option kind twice")
            if self.default_option not in kinds:
                raise ValueError(f"rule {self.id!r}: default_option must be one of its options")
        elif self.default_option is not None:
            raise ValueError(f"rule {self.id!r} has a default_option but no options")
        return self


class Presets(_Strict):
    """Values the law or the marketplaces fix (PRC Consumer Protection Law, Art. 25)."""

    no_reason_return_days: int = Field(ge=1)
    refund_after_return_days: int = Field(ge=1)
    no_reason_return_shipping_paid_by: Party


class ApprovalRules(_Strict):
    """What needs a supervisor besides an amount above the proposer's limit."""

    flagged_accounts: bool = True
    goodwill_agent_ceiling: Decimal = Field(ge=0)


class Caps(_Strict):
    """Ceilings over a whole proposal."""

    compensation_per_case: Decimal = Field(gt=0)


class NegotiationRules(_Strict):
    """How far counter-offers may go, per stage, and when mediation is due."""

    max_rounds: int = Field(ge=1)
    coupon_step: Decimal = Field(gt=0)
    coupon_valid_days: int = Field(ge=1)
    concession_refund_within_business_days: int = Field(ge=1)
    agent_coupon_ceiling: Decimal = Field(ge=0)
    mediation_coupon_ceiling: Decimal = Field(ge=0)
    mediation_concessions: tuple[Concession, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.mediation_coupon_ceiling < self.agent_coupon_ceiling:
            raise ValueError("mediation_coupon_ceiling is below agent_coupon_ceiling")
        return self


class CompensationPolicy(_Strict):
    """A validated, versioned compensation policy."""

    version: str = Field(pattern=r"^compensation-v[1-9][0-9]*$")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    comment: str = ""
    presets: Presets
    approval: ApprovalRules
    caps: Caps
    negotiation: NegotiationRules
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ids = [rule.id for rule in self.rules]
        repeated = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if repeated:
            raise ValueError(f"duplicate rule ids: {', '.join(repeated)}")
        ceiling = self.presets.refund_after_return_days
        for rule in self.rules:
            for template in rule.remedies + rule.options:
                promised = template.refund_within_days_of_return
                if promised is not None and promised > ceiling:
                    raise ValueError(
                        f"rule {rule.id!r} refunds {promised} days after the return arrives; "
                        f"the law allows at most {ceiling} (presets.refund_after_return_days)"
                    )
        cap = self.caps.compensation_per_case
        for name, value in (
            ("approval.goodwill_agent_ceiling", self.approval.goodwill_agent_ceiling),
            ("negotiation.mediation_coupon_ceiling", self.negotiation.mediation_coupon_ceiling),
        ):
            if value > cap:
                raise ValueError(f"{name} {value} is above caps.compensation_per_case {cap}")
        return self


def policy_from_dict(data: Any) -> CompensationPolicy:
    """Validates a policy in its file form; PolicyError names each problem."""
    try:
        return CompensationPolicy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'policy'}: {error['msg']}"
            for error in exc.errors()
        )
        raise PolicyError(f"invalid compensation policy: {problems}") from exc


def policy_from_json(text: str) -> CompensationPolicy:
    """Parses and validates a policy from JSON text (numbers read as exact decimals)."""
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"compensation policy is not valid JSON: {exc}") from exc
    return policy_from_dict(data)


@cache
def load_policy(version: str = DEFAULT_POLICY_VERSION) -> CompensationPolicy:
    """The packaged policy `policy/<version>.json`, validated once per process."""
    folder = resources.files(POLICY_PACKAGE).joinpath(POLICY_FOLDER)
    try:
        text = folder.joinpath(f"{version}.json").read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise PolicyError(f"no compensation policy {version!r}") from exc
    policy = policy_from_json(text)
    if policy.version != version:
        raise PolicyError(f"{version}.json says it is version {policy.version!r}")
    return policy


# --- Facts in, proposal out ----------------------------------------------------------


@dataclass(frozen=True)
class CaseFacts:
    """What the policy reads about a case."""

    category: str
    subcategory: str | None
    responsibility: Responsibility
    order_amount: Decimal
    currency: str = "CNY"
    # Days past the promised delivery (logistics delays).
    delay_days: Decimal = Decimal(0)
    # The customer's demands by type (refund, return, compensation...), with amounts if named.
    demands: Mapping[str, Decimal | None] = field(default_factory=dict)
    after_sales_reason: str | None = None
    days_since_delivery: int | None = None
    returnable_without_reason: bool = True
    customer_flags: frozenset[str] = frozenset()

    @property
    def demanded_compensation(self) -> Decimal | None:
        """The compensation amount the customer named, if any."""
        return self.demands.get("compensation")


@dataclass(frozen=True)
class Goodwill:
    """A gesture beyond the standard: compensation replaces the rules', gestures add."""

    kind: RemedyKind
    reason: str
    amount: Decimal = Decimal(0)
    valid_days: int = 30
    coupon_threshold: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.kind not in COMPENSATION_KINDS | GESTURE_KINDS:
            raise PolicyError(f"goodwill is compensation or a gesture, not {self.kind}")
        if not self.reason.strip():
            raise PolicyError("goodwill needs its reason")
        if self.kind in COMPENSATION_KINDS and self.amount <= 0:
            raise PolicyError(f"goodwill {self.kind} needs a positive amount")


@dataclass(frozen=True)
class RuleApplied:
    """A rule (or a step like goodwill) that shaped the proposal, and why."""

    rule_id: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class CapApplied:
    """An amount a cap cut."""

    rule_id: str
    remedy: RemedyKind
    uncapped: Decimal
    capped: Decimal
    reason: str


@dataclass(frozen=True)
class Approval:
    """Whether a supervisor must approve, and every reason why."""

    required: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Proposal:
    """The remedies offered, under which policy, by which rules, and whether approval is needed."""

    remedies: tuple[Remedy, ...]
    policy_version: str
    currency: str
    order_amount: Decimal
    responsibility: Responsibility
    rules_applied: tuple[RuleApplied, ...]
    caps_applied: tuple[CapApplied, ...]
    approval: Approval
    demanded_compensation: Decimal | None = None

    @property
    def total_value(self) -> Decimal:
        """Money the customer receives: refunds, coupons and credit."""
        return total(self.remedies)

    @property
    def compensation_value(self) -> Decimal:
        """Coupons and credit only."""
        return total(self.remedies, COMPENSATION_KINDS)

    @property
    def is_rejection(self) -> bool:
        """True when the goods remedy is a rejection with its explanation."""
        return any(remedy.kind is RemedyKind.REJECTION for remedy in self.remedies)

    def kinds(self) -> tuple[RemedyKind, ...]:
        """The remedies' kinds in order."""
        return tuple(remedy.kind for remedy in self.remedies)

    def describe(self) -> tuple[str, ...]:
        """One readable line per remedy."""
        return tuple(remedy.describe() for remedy in self.remedies)

    def as_dict(self) -> dict[str, Any]:
        """What was offered, JSON-ready: remedies, policy version, currency, order amount."""
        return {
            "policy_version": self.policy_version,
            "currency": self.currency,
            "order_amount": str(money(self.order_amount)),
            "remedies": [remedy.as_dict() for remedy in self.remedies],
        }


def _holds(when: Conditions, facts: CaseFacts, presets: Presets) -> str | None:
    """Why the conditions hold (a short text), or None when one does not."""
    held: list[str] = []
    checks: list[tuple[bool, bool, str]] = [
        (bool(when.categories), facts.category in when.categories, f"category {facts.category}"),
        (
            bool(when.subcategories),
            facts.subcategory in when.subcategories,
            f"subcategory {facts.subcategory}",
        ),
        (
            bool(when.responsibilities),
            facts.responsibility in when.responsibilities,
            f"responsibility {facts.responsibility}",
        ),
        (
            bool(when.after_sales_reasons),
            facts.after_sales_reason in when.after_sales_reasons,
            f"after-sales reason {facts.after_sales_reason}",
        ),
        (
            when.delay_days_over is not None,
            when.delay_days_over is not None and facts.delay_days > when.delay_days_over,
            f"{facts.delay_days} days late (more than {when.delay_days_over})",
        ),
        (
            when.returnable_without_reason is not None,
            facts.returnable_without_reason == when.returnable_without_reason,
            "returnable without a reason"
            if facts.returnable_without_reason
            else "excluded from no-reason returns",
        ),
    ]
    if when.within_no_reason_window is not None:
        inside = (
            facts.days_since_delivery is not None
            and facts.days_since_delivery <= presets.no_reason_return_days
        )
        checks.append(
            (
                True,
                inside == when.within_no_reason_window,
                f"{facts.days_since_delivery} days after delivery "
                f"(no-reason window {presets.no_reason_return_days} days)",
            )
        )
    for given, met, text in checks:
        if not given:
            continue
        if not met:
            return None
        held.append(text)
    return ", ".join(held) or "always"


def _choose_option(rule: Rule, facts: CaseFacts) -> tuple[RemedyTemplate, str]:
    demanded = set(facts.demands)
    for option in rule.options:
        asked = sorted(demanded & set(option.answers))
        if asked:
            return option, f"{option.kind} chosen: the customer asked for {', '.join(asked)}"
    default = next(option for option in rule.options if option.kind == rule.default_option)
    return default, f"{default.kind} by default: no demand named an option"


def _remedy(
    template: RemedyTemplate, rule: Rule, facts: CaseFacts, policy: CompensationPolicy
) -> tuple[Remedy, list[CapApplied], str]:
    """A template priced for the facts, with the caps it met and a note."""
    caps: list[CapApplied] = []
    note = ""
    amount = Decimal(0)
    partial = False
    if template.amount is not None:
        amount = template.amount
    elif template.whole_order:
        amount = facts.order_amount
        asked = facts.demands.get("refund")
        if template.kind in _REFUND_KINDS and asked is not None and 0 < asked < amount:
            # The customer asked for part of the price back (a price difference, a missing
            # accessory): refund what they asked, not more.
            amount, partial, note = asked, True, f"partial refund of the {asked} asked for"
    elif template.percent_of_order is not None:
        amount = money(facts.order_amount * template.percent_of_order / 100)
        partial = template.kind in _REFUND_KINDS
        if template.cap is not None and amount > template.cap:
            caps.append(
                CapApplied(
                    rule.id,
                    template.kind,
                    amount,
                    money(template.cap),
                    f"{template.percent_of_order}% of the order is {amount}, "
                    f"capped at {money(template.cap)}",
                )
            )
            amount = money(template.cap)
    is_refund = template.kind in _REFUND_KINDS
    is_return = template.kind is RemedyKind.RETURN_AND_REFUND
    remedy = Remedy(
        kind=template.kind,
        amount=amount,
        currency=policy.currency,
        source=RemedySource.POLICY,
        rule_id=rule.id,
        partial=partial,
        refund_method=ORIGINAL_PAYMENT_METHOD if is_refund else None,
        earliest_business_days=template.earliest_business_days,
        within_business_days=template.within_business_days,
        within_hours=template.within_hours,
        refund_within_days_of_return=(
            template.refund_within_days_of_return or policy.presets.refund_after_return_days
            if is_return
            else None
        ),
        return_shipping_paid_by=template.return_shipping_paid_by,
        pickup=template.pickup,
        coupon_threshold=(
            template.coupon_threshold or Decimal(0) if template.kind is RemedyKind.COUPON else None
        ),
        coupon_valid_days=template.valid_days,
        text=template.text,
    )
    return remedy, caps, note


def _goodwill_remedy(goodwill: Goodwill, currency: str) -> Remedy:
    is_coupon = goodwill.kind is RemedyKind.COUPON
    return Remedy(
        kind=goodwill.kind,
        amount=goodwill.amount,
        currency=currency,
        source=RemedySource.GOODWILL,
        rule_id="goodwill",
        coupon_threshold=goodwill.coupon_threshold if is_coupon else None,
        coupon_valid_days=goodwill.valid_days if is_coupon else None,
        text=goodwill.reason if goodwill.kind in GESTURE_KINDS else None,
    )


def _cap_compensation(
    remedies: Sequence[Remedy], policy: CompensationPolicy
) -> tuple[list[Remedy], list[CapApplied]]:
    """Compensation kept within the per-case cap, earlier remedies served first."""
    left = policy.caps.compensation_per_case
    kept: list[Remedy] = []
    caps: list[CapApplied] = []
    for remedy in remedies:
        if remedy.kind not in COMPENSATION_KINDS:
            kept.append(remedy)
            continue
        allowed = min(remedy.amount, left)
        left -= allowed
        if allowed < remedy.amount:
            caps.append(
                CapApplied(
                    "caps.compensation_per_case",
                    remedy.kind,
                    remedy.amount,
                    allowed,
                    f"compensation per case is capped at {policy.caps.compensation_per_case}",
                )
            )
        if allowed > 0:
            kept.append(remedy.with_changes(amount=allowed))
    return kept, caps


def _group_rank(remedy: Remedy) -> int:
    return next(rank for rank, group in enumerate(RuleGroup) if remedy.kind in GROUP_KINDS[group])


def approval_for(
    value: Decimal,
    *,
    approval_limit: Decimal,
    customer_flags: Iterable[str],
    policy: CompensationPolicy,
    extra_reasons: Iterable[str] = (),
) -> Approval:
    """Whether an offer worth `value` needs a supervisor, with every reason."""
    reasons: list[str] = []
    if value > approval_limit:
        reasons.append(
            f"the offer gives {money(value)} {policy.currency}, "
            f"above the approval limit of {money(approval_limit)}"
        )
    flags = sorted(set(customer_flags))
    if flags and policy.approval.flagged_accounts:
        reasons.append(f"the account is flagged ({', '.join(flags)})")
    reasons.extend(extra_reasons)
    return Approval(required=bool(reasons), reasons=tuple(reasons))


def assemble_proposal(
    remedies: Sequence[Remedy],
    *,
    facts: CaseFacts,
    policy: CompensationPolicy,
    approval_limit: Decimal,
    rules_applied: Sequence[RuleApplied],
    caps_applied: Sequence[CapApplied] = (),
    approval_reasons: Iterable[str] = (),
) -> Proposal:
    """Caps, payers and approval applied to a set of remedies: the proposal to offer."""
    # Goods first, then compensation, then gestures: how agents and customers read an offer.
    ordered = sorted(remedies, key=_group_rank)
    capped, more_caps = _cap_compensation(ordered, policy)
    priced = assign_payers(capped, facts.responsibility)
    return Proposal(
        remedies=priced,
        policy_version=policy.version,
        currency=policy.currency,
        order_amount=money(facts.order_amount),
        responsibility=facts.responsibility,
        rules_applied=tuple(rules_applied),
        caps_applied=(*caps_applied, *more_caps),
        approval=approval_for(
            total(priced),
            approval_limit=approval_limit,
            customer_flags=facts.customer_flags,
            policy=policy,
            extra_reasons=approval_reasons,
        ),
        demanded_compensation=facts.demanded_compensation,
    )


def evaluate(
    facts: CaseFacts,
    *,
    approval_limit: Decimal,
    goodwill: Sequence[Goodwill] = (),
    policy: CompensationPolicy | None = None,
) -> Proposal:
    """The policy's proposal for a case, with its version, rules, caps, payers and approval."""
    policy = policy or load_policy()
    if facts.currency != policy.currency:
        raise PolicyError(
            f"policy {policy.version} prices in {policy.currency}, the order is in {facts.currency}"
        )
    remedies: list[Remedy] = []
    applied: list[RuleApplied] = []
    caps: list[CapApplied] = []
    for group in RuleGroup:
        for rule in (rule for rule in policy.rules if rule.group is group):
            why = _holds(rule.when, facts, policy.presets)
            if why is None:
                continue
            notes = [why]
            templates = rule.remedies
            if rule.options:
                option, choice = _choose_option(rule, facts)
                templates = (option,)
                notes.append(choice)
            for template in templates:
                remedy, template_caps, note = _remedy(template, rule, facts, policy)
                remedies.append(remedy)
                caps.extend(template_caps)
                if note:
                    notes.append(note)
            applied.append(RuleApplied(rule.id, rule.reason, "; ".join(notes)))
            break
    if any(remedy.kind is RemedyKind.REJECTION for remedy in remedies):
        # Nothing is owed, so nothing is compensated; the explanation stays.
        remedies = [remedy for remedy in remedies if remedy.kind not in COMPENSATION_KINDS]
        goodwill = [g for g in goodwill if g.kind not in COMPENSATION_KINDS]
    approval_reasons: list[str] = []
    extra = [_goodwill_remedy(g, policy.currency) for g in goodwill]
    extra_compensation = [r for r in extra if r.kind in COMPENSATION_KINDS]
    if extra_compensation:
        replaced = [r for r in remedies if r.kind in COMPENSATION_KINDS]
        remedies = [r for r in remedies if r.kind not in COMPENSATION_KINDS]
        given = total(extra_compensation)
        applied.append(
            RuleApplied(
                "goodwill",
                "; ".join(g.reason for g in goodwill if g.kind in COMPENSATION_KINDS),
                f"{given} {policy.currency} replaces the policy's "
                f"{total(replaced, COMPENSATION_KINDS)}",
            )
        )
        ceiling = policy.approval.goodwill_agent_ceiling
        if given > ceiling:
            approval_reasons.append(
                f"goodwill of {given} is above the {ceiling} an agent may grant alone"
            )
    for goodwill_item, remedy in zip(goodwill, extra, strict=True):
        if remedy.kind in GESTURE_KINDS:
            if any(r.kind is remedy.kind for r in remedies):
                continue
            applied.append(RuleApplied("goodwill", goodwill_item.reason, f"{remedy.kind} added"))
        remedies.append(remedy)
    return assemble_proposal(
        remedies,
        facts=facts,
        policy=policy,
        approval_limit=approval_limit,
        rules_applied=applied,
        caps_applied=caps,
        approval_reasons=approval_reasons,
    )
