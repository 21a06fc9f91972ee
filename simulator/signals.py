"""The vocabulary of behavioural signals a scenario may declare.

A scenario's rows may differ from the rows of comparable benign actors only in the signals it
declares (``Scenario.signals(knobs)``: phase name -> signal names). Everything else about its
rows (identifiers, formats, devices, addresses, agents, status codes, timing) comes from the
generators benign traffic uses. The artefact audit compares attack rows with benign rows column
by column and treats a difference as declared only when one of the declared signals names that
column (``columns``), that kind of feature of the column (``column:kind``, as ``ts:hour``: the
audit's features are named ``<column>:<kind>...``), or that per-entity-day aggregate
(``aggregates``). A signal names no more than it explains: off-hours work moves when rows come,
not a script's delay repeated to the microsecond (see ``OFF_HOURS_TIME``, ``NO_TICKET_KINDS``,
``BULK_CUSTOMER_KINDS``, ``REPEAT_KINDS``, ``IMPERSONATION_KINDS``, ``PAGE_BYTES_KINDS``). No signal
covers a value's shape that no comparable benign row carries (the audit's unseen-shape test): a
format is a leak wherever it is. Nor does a signal whose values come from benign traffic's own pools (one of the
customers' clients, the pages customers read: ``unseen=False``) cover a value, or a value's prefix, that no comparable
benign row has (the audit's unseen-value and unseen-prefix tests).

Aggregates are computed per (entity, bucket) by the audit:

- ``rows``: events of the entity in the bucket;
- ``customers``: distinct customers it read;
- ``records``: records it read (row counts of pulls included);
- ``ips``, ``devices``, ``agents``, ``tickets``: distinct values it used;
- ``new_ip``, ``new_device``: values it never used before the bucket;
- ``interleaved``: whether two of its addresses, devices or clients take turns (their time ranges
  overlap: the account in use from two places at once, where a commute or a night at home uses
  one place after the other);
- ``night``: share of its rows in the local small hours (0-6h) or on days off;
- ``sequential``: share of its customer ids that follow the previous one;
- ``repeat``: reads per distinct customer;
- ``in_<stream>``: whether a row's value also shows in that stream's rows of the entity's day
  (a gateway row's address in the customer's auth rows, say);
- ``leaving``, ``layoff_team``: who the row's employee is, from the employees table (the days
  until their departure; the share of employees in their team).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signal:
    """One behavioural signal: what it means and what it may change."""

    name: str
    meaning: str
    # raw log columns whose values may differ (stream.column or column in every stream), or one kind of feature of a
    # column (column:kind: ts:hour covers f:ts:hour and a:ts:hour:pick, not f:ts:second)
    columns: tuple[str, ...] = ()
    aggregates: tuple[str, ...] = ()  # per-entity-day aggregates (see the module docstring)
    # whether it explains values no comparable benign row has (a new device, address or token: yes); False for a signal
    # whose values come from benign traffic's own pools, which explains how often each comes, not a value none has
    unseen: bool = True


#: The kinds of the time's features (``ts:<kind>``) that off-hours work explains: when rows come (the hour, weekday and
#: night), the gap since the entity's previous row, a session's pace (a night and a day from one place are one session
#: with a pause in it), how near other people's rows are (few work at night), the delay from a login (a night session
#: needs one) and, for now, the clock's digits (minute, second, sub-second, residues) and the echo of others' rows. Not
#: a delay repeated to the microsecond (``ts:again``), a daily clock (``ts:daily``), a session's even rhythm
#: (``ts:rhythm``) or a divisor every row's clock fields share (the tie test): until 2026-12-07 the signal named the
#: whole ``ts`` column, and a takeover at its default stealth passed with a script's fixed delay each day, or with
#: every row on an even minute. The digits and the echo stay: the echo grows with a unit's rows (the job hunt's busy
#: theft days crossed its line, undeclared), and with the digits undeclared the impersonation crossed lines by chance
#: on the check world (seed 6 at stealth 0: a residue of its times, z 6.2 against 6.0; seed 7: the classifier on its
#: few logins, 0.61 against 0.60).
OFF_HOURS_TIME = (
    "hour",
    "weekday",
    "night",
    "gap",
    "pace",
    "near",
    "after_auth",
    "no_auth",
    "lifecycle",
    "minute",
    "second",
    "subsecond",
    "residue",
    "echo",
)

#: The kinds of an integer id's features that a missing value moves among the rows (a missing id is a value of its
#: own there): its share, parity, trailing zeros, bit length, low and high bits, whether a field holds the entity, the
#: value itself, and per entity-day the distinct and new values. Below, for a missing ticket and a missing customer.
MISSING_ID_KINDS = ("null", "odd", "zeros", "bits", "low16", "high", "has_entity", "value", "distinct", "distinct_share", "new")

#: The kinds of the ticket number's features (``ticket_id:<kind>``) that opens without a ticket explain: everything a
#: missing number moves (its share, and the features of the rows' numbers, a missing one among them; the tickets per
#: day, the reads per ticket). Not the excess of a residue among the distinct numbers the rows do carry, nor the tie
#: test: those numbers come from the ticketing system as benign ones do. Until 2026-12-07 the signal named the whole
#: column, which ten of the eleven built-in scenarios declare at their default knobs, and the snooping agent passed
#: there with every ticket number even (mod 2: z 7.5 against a line of 6.0, reported as declared). The excess of a
#: bit stays declared for now: a number holds its account's employee in a field, and three accounts share a bit of it
#: by chance (the impersonation at default knobs, audit world seeds 1-3: bit 23 clear on every number, z 9.8 against a
#: line of 9.8), so tickets from a private range (bit 60 on every number) still pass where no_ticket is declared.
NO_TICKET_KINDS = (*MISSING_ID_KINDS, "up", "uses", "bit")

#: The kinds of the customer id's features (``customer_id:<kind>``) that bulk pulls explain: a pull names no customer,
#: so everything a missing customer moves among the rows (the share, the features of the rows' ids and of the customers
#: they name, a missing one among them). Not which customers the single reads name (``customer_id:profile:...``, the
#: order and reuse of the ids: ``up``, ``uses``), nor the excess of a residue or a bit among the distinct ids, nor the
#: tie test: those are judged on the rows that name a customer. Until 2026-12-07 the signal named the whole column,
#: which nine of the eleven built-in scenarios declare at their default knobs, and a takeover there passed with its
#: reads all of one home region (KS 0.98 against a line of 0.20, reported as declared).
BULK_CUSTOMER_KINDS = (*MISSING_ID_KINDS, "unknown", "activity", "days_since_signup", "tier", "in_auth", "in_gateway")

#: The kinds of the customer id's features that reading the same few people again and again explains: how often the
#: ids come back (the rows naming each, the distinct and new customers of a day and their share). Not whom they name
#: (``customer_id:profile:...``, activity, tier), their order, their digits or the tie test. Until 2026-12-07 the signal
#: named the whole column, which the snooping agent declares at every stealth, and it passed there with its people all
#: of one mail provider (KS 0.79 against a line of 0.22) or every id even (z 9.2 against 6.0), reported as declared.
REPEAT_KINDS = ("uses", "distinct", "distinct_share", "repeat", "new")

#: The kinds of the employee id's features that another's account or device explains: which account's rows they are
#: (the value, the distinct and new accounts of a unit and their share, a missing one). Not who the account's employee
#: is (``employee_id:actor:...``: tenure, team, role history), the id's digits or the tie test. Until 2026-12-07 the
#: signal named the whole column, and a mail-out by the newest hires passed at its default knobs (tenure KS 0.92
#: against a line of 0.68, reported as declared).
IMPERSONATION_KINDS = ("distinct", "distinct_share", "null", "value", "new")

#: The kinds of a page's size (``gateway.bytes:<kind>``) that a mix of pages explains: the size and its bits (a small
#: page's high bits are clear: the forged token's personal-data pages have bit 15 clear on 67-100% of sizes, against
#: 55-57% of benign ones), the value, distinct and new sizes. Not its last digits (parity, trailing zeros, residues,
#: the tie test): the server draws a size as it does for anyone. Until 2026-12-07 the signal named the whole column,
#: and the forged token at default knobs passed with every size a multiple of 16 (z 25.0 against 6.0, as declared).
PAGE_BYTES_KINDS = ("num", "bit", "value", "null", "distinct", "distinct_share", "new")


def _kinds(column: str, kinds: tuple[str, ...]) -> tuple[str, ...]:
    """``column:kind`` for each of ``kinds`` (see :class:`Signal`'s ``columns``)."""
    return tuple(f"{column}:{k}" for k in kinds)


VOCABULARY: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal("volume", "more events per day than comparable actors", aggregates=("rows", "records")),
        # reads spread over more customers revisit each of them less: reads per distinct customer fall
        Signal(
            "breadth", "more distinct customers per day than comparable actors", aggregates=("customers", "records", "repeat")
        ),
        # a pull names no single customer: its customer_id is null, as routine queries' are
        Signal(
            "bulk_pull",
            "bulk pulls (exports, queries, uploads) larger or more frequent than the role's routine",
            columns=(
                "admin.row_count",
                "admin.action",
                "admin.channel",
                *_kinds("admin.customer_id", BULK_CUSTOMER_KINDS),
            ),
            aggregates=("records",),
        ),
        # night work is done from home, through the VPN (as the on-call engineer's): that night's
        # address on top of the day's; of the time, the kinds OFF_HOURS_TIME lists
        Signal(
            "off_hours",
            "work at night or on days off, outside the actor's shift",
            columns=(
                *_kinds("ts", OFF_HOURS_TIME),
                "customer_id:near",  # the nearest read of the same customer by someone else: few read at night
                "src_ip",
            ),
            aggregates=("night", "ips", "new_ip"),
        ),
        Signal(
            "no_ticket",
            "reads or pulls without a ticket where peers have one",
            columns=_kinds("admin.ticket_id", NO_TICKET_KINDS),
            aggregates=("tickets",),
        ),
        Signal(
            "foreign_origin", "requests from abroad", columns=("country", "src_ip", "gateway.asn"), aggregates=("ips", "new_ip")
        ),
        Signal("cloud_origin", "requests from hosting or VPN providers' networks", columns=("src_ip", "gateway.asn")),
        Signal(
            "new_origin",
            "an address the account or client never used before",
            columns=("src_ip", "gateway.asn"),
            aggregates=("new_ip", "ips"),
        ),
        # a customer's new client shows per customer-day (new and distinct agents), never as a value
        # no customer's client carries
        Signal(
            "new_device",
            "a device or client the account never used before",
            columns=("admin.device",),
            aggregates=("new_device", "devices", "agents"),
        ),
        # a crawler's few proxies each serve many of the customers it reads, while benign customers' addresses are
        # their own (no carrier-grade NAT shared by strangers: a red-team rule "an address with two customers in a
        # day" reached precision 0.78-0.99 at stealth 1, against base rates under 0.03)
        Signal(
            "rotating_ips",
            "one client or key spread over many addresses, and a few addresses shared by the many customers it reads",
            columns=("src_ip", "gateway.asn"),
            aggregates=("ips", "new_ip"),
        ),
        Signal("sequential_ids", "customer ids read in order", columns=("customer_id",), aggregates=("sequential",)),
        Signal(
            "repeat_targets",
            "the same few customers read again and again",
            columns=_kinds("customer_id", REPEAT_KINDS),
            aggregates=("repeat", "customers"),
        ),
        # the pages customers read, in another mix: a page no customer's session calls is not it (a crawler's endpoint
        # of its own passed while the signal explained any value of the column, until 2026-12-07)
        Signal(
            "page_mix",
            "a mix of pages no human customer produces (personal data pages only)",
            columns=("gateway.endpoint", "gateway.records_returned", *_kinds("gateway.bytes", PAGE_BYTES_KINDS)),
            unseen=False,
        ),
        # one of the customers' own clients: a version no customer's client sends is not it (a crawler's made-up
        # version of the shop's app passed while the signal explained any value of the column, until 2026-12-07)
        Signal(
            "uniform_client",
            "one client version across many customers' sessions",
            columns=("gateway.user_agent",),
            aggregates=("agents",),
            unseen=False,
        ),
        # with no issuance there are no auth rows of that session: no value of it shows in auth
        Signal(
            "unissued_token",
            "tokens with no issuance record in auth",
            # whether auth shows the token, not how its id was drawn (until 2026-12-07 the whole column: forged tokens
            # with every id even passed, z 11.1 against a line of 6.0 reported as declared)
            columns=("gateway.token_id:in_auth",),
            aggregates=("in_auth",),
        ),
        Signal("departed_owner", "a credential whose owner has left", columns=("key_id",)),
        # a sweep reads everyone, most of whom rarely use the service themselves, while benign sessions come in
        # proportion to each customer's activity (a red-team rule ranking tokens by how seldom their customer shows:
        # AUC 0.67-0.72 at stealth 1); the case as it happened read nearly every account
        Signal("dormant_targets", "reads of customers who rarely use the service themselves (a sweep reads everyone)"),
        # the premise of a scenario, in the world tables rather than the logs: the employees table shows who leaves
        # (a red-team rule "leaves during the span" alone: precision 0.72 on one scenario's actors, against a base
        # rate of 0.014), and the departures of a team in the year before
        Signal(
            "leaving",
            "an actor picked among employees who leave during the span (their termination date)",
            aggregates=("leaving",),
        ),
        Signal(
            "layoff_team",
            "an actor picked on the team that lost the most people in the year before",
            aggregates=("layoff_team",),
        ),
        # a customer's own sessions open with a login now and then (after a logout or a lapsed refresh
        # token); one who cannot log in (a forged refresh token) never does
        Signal(
            "no_login",
            "sessions that no login ever opens: the account's tokens come only from refreshes",
            columns=("auth.event",),
        ),
        Signal("out_of_role", "actions or channels outside the actor's role", columns=("admin.action", "admin.channel")),
        # the account's rows of the day then come from two people's sessions: two addresses, two devices
        Signal(
            "impersonation",
            "an account used from another employee's device, or as another employee",
            columns=(*_kinds("employee_id", IMPERSONATION_KINDS), "admin.device", "src_ip"),
            aggregates=("devices", "new_device", "ips", "new_ip"),
        ),
        # a second party on the account beside its holder: the holder's session and the other's take turns in the
        # day (an outsider's replay while the holder works, a colleague's account used while the colleague works)
        Signal(
            "concurrent_use",
            "an account in use from two places or devices at once: its holder's session beside another's",
            aggregates=("interleaved",),
        ),
        Signal(
            "extortion",
            "an extortion message to the company",
            columns=("hr.event", "hr.subject_kind", "hr.subject_id", "hr.detail"),
        ),
    )
}


def check(names: object, where: str) -> tuple[str, ...]:
    """The declared names as a sorted tuple; raises ``ValueError`` naming an unknown one."""
    out = tuple(sorted(set(names)))  # type: ignore[call-overload]
    unknown = [n for n in out if n not in VOCABULARY]
    if unknown:
        raise ValueError(f"{where}: unknown signals {unknown}; the vocabulary is {sorted(VOCABULARY)}")
    return out
