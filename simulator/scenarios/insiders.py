"""Staff-side insider scenarios: the catalogue beyond the forged-token case (docs/scenarios.md).

Every scenario here is an employee (or someone holding an employee's account) acting in the
staff's streams (admin reads, employee logins, exports), rendered once per day for the whole
staff like normal staff traffic. A scenario is a short declaration:

- who fits (roles, a leaver, a survivor of a team that lost people, a colleague to misuse);
- its phases, each an :class:`Act`: reads per day, bulk pulls per day and their size, the
  share of night work, the share of reads tied to a ticket, whose identity and device the rows
  carry, where they come from;

and :class:`StaffScenario` turns that into rows. Volumes are per actor and day at ``rate=1``
and ``stealth=0``; row counts of bulk pulls are given at a 1M-customer world and scale with
the world, like the analysts' routine queries. ``stealth`` moves each phase toward the
actor's peers:

- fewer reads and pulls (a quarter of them at stealth 1);
- pull sizes toward the analysts' routine median;
- work inside the actor's shift instead of at night, and not on days off;
- reads tied to a (reused) ticket;
- bulk pulls run as routine SQL queries (like the analysts', with no ticket) or, for roles
  that never pull in bulk, given up;
- a domestic address instead of a foreign one, abroad only for the last days;
- in version 3 of four scenarios, the scenario's defining trait itself: a stealth share of an
  impersonator's (or mail-out colleague's) rows comes from the account's own session (no second
  device or address), a stealth share of a compromised employee's rows comes from the holder's own
  working session (the outsider driving their laptop remotely; on a day off, the stolen session
  replayed through the company VPN), and a privilege misuser's
  out-of-role edits fall from every read at stealth 0 to ``OUT_OF_ROLE_FLOOR`` of them at stealth 1
  (the rest are plain opens in the role's mix).

Bulk pulls (exports, queries) log a row count and no customer id, like the analysts' routine
queries; the customers they cover (a contiguous id range: ids follow signup order, so "the
customers who signed up in March" is a range) reach the exposure truth through hidden
columns that never reach the logs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, create_model

from simulator import pools, signals
from simulator.config import SimConfig
from simulator.errors import ScenarioError
from simulator.seeding import rng
from simulator.staff_traffic import (
    QUERY_SIGMA,
    TICKET_SHARE,
    Session,
    StaffDay,
    direct_addresses,
    scaled_rows,
    single_read_share,
)
from simulator.units import ACCESS_ROLES, BULK_ROLES, HOUR
from simulator.world import signed_up, steady_roles

#: Median rows of an analyst's routine query (at 1M customers; see staff_traffic).
ROUTINE_ROWS = 3_000
#: A scenario whose share of single reads tied to a ticket is below this lacks tickets where peers have them
#: (declares ``no_ticket`` below stealth 1); at stealth 1 its share is that of the account's role.
TICKET_FLOOR = 0.95
#: Roles whose daily work opens customer records (the engineers' does not: they read a few for bugs).
RECORD_ROLES = ("support_agent", "logistics", "analyst", "administrator")
#: Share of a privilege misuser's record opens that are out of role at stealth 1 (all of them at stealth 0).
OUT_OF_ROLE_FLOOR = 0.2


class StaffKnobs(BaseModel):
    """Knobs shared by the staff-side scenarios. Offsets are days after the end of the warm-up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_offset: int = Field(2, ge=0, description="days after warm-up when the incident starts (leavers: at the latest)")
    duration_days: int = Field(14, ge=2, description="days of malicious activity (cut at the end of the span)")
    rate: float = Field(1.0, gt=0, le=100, description="multiplier of the scenario's reads and pulls per day")
    stealth: float = Field(0.5, ge=0, le=1, description="0 blatant ... 1 mimics the actor's peers")
    actors: int = Field(1, ge=1, le=50, description="insiders acting in the incident, each on their own")


class PhasedKnobs(StaffKnobs):
    """Knobs of a two-phase staff scenario."""

    phase_split: float = Field(0.5, gt=0, lt=1, description="share of the duration in the first phase")


@dataclass(frozen=True)
class Act:
    """What an actor does on a day of one phase (at rate 1, stealth 0)."""

    phase: str
    views: float = 0.0  # single-record reads per day
    view_action: str = "view"
    pulls: float = 0.0  # bulk pulls (exports or queries) per day
    pull_rows: float = 0.0  # mean rows per pull
    pull_channel: str = "export"  # export | sql | api
    night: float = 0.0  # share of the day's rows at night (local 0-5h)
    ticket: float = 0.0  # share of single reads tied to a ticket
    targets: int = 0  # > 0: reads revisit this many fixed people (neighbours, celebrities); 0: anyone
    identity: str = "self"  # self | as_colleague (colleague's id, actor's device) | colleague_device (own id, colleague's device)
    origin: str = "office"  # office | takeover (someone else's device, from abroad)
    days_off: bool = False  # works on weekends and holidays too
    ramp: bool = False  # volume grows over the phase (more and more often)


@dataclass(frozen=True)
class Plan:
    """Everything needed to render any day of the incident."""

    incident_id: int
    actors: tuple[int, ...]
    colleagues: tuple[int, ...]  # per actor: the colleague misused (-1 when none)
    first_day: int
    end_day: int  # exclusive
    phases: tuple[tuple[str, int, int], ...]  # (name, first day, end day)
    knobs: StaffKnobs
    note: str = ""  # how the actors were chosen
    targets: tuple[tuple[int, ...], ...] = field(default_factory=tuple)
    # the employees the actors were drawn from (the picking rule's fit, by employee id; for a leaver's, the role fit
    # before the departures to come): truth only, where the chance lines rank them blind (knowing the rule is knowing
    # who tends to act, not detection)
    pool: tuple[int, ...] = ()


class StaffScenario:
    """Base class: actor selection by fit, phase layout and rendering of the staff streams."""

    id = ""
    summary = ""
    Knobs = StaffKnobs
    roles: tuple[str, ...] = ACCESS_ROLES
    leaver = False  # prefer employees who leave during the span; the window ends at the departure
    layoff_team = False  # prefer members of the team that lost the most people
    acts: tuple[Act, ...] = ()

    def declared_easy(self, knobs: StaffKnobs) -> str | None:
        """Why this variant is easy on purpose (shortcut audits expect a leak), or None."""
        return None

    def signals(self, knobs: StaffKnobs) -> dict[str, tuple[str, ...]]:
        """Phase -> the behavioural signals its rows carry at these knobs (see :mod:`simulator.signals`)."""
        s = knobs.stealth
        out = {}
        for act in self.acts:
            sig = {"volume"}  # the actor's reads come on top of their ordinary work
            if act.pulls > 0 and s < 1:
                sig.add("bulk_pull")
            if (act.night > 0 or act.days_off) and s < 1:
                sig.add("off_hours")
            if (act.ticket < TICKET_FLOOR and s < 1) or act.pulls > 0:
                sig.add("no_ticket")  # pulls run as routine queries carry no ticket, like the analysts'
            if act.targets:
                sig.add("repeat_targets")
            else:
                sig.add("breadth")
            if act.identity != "self":
                sig.add("impersonation")
            if act.origin == "takeover" and s < 1:
                # at stealth 1 every row comes from the holder's own session (see _sessions)
                sig |= {"new_device", "new_origin", "foreign_origin"}
            if (act.identity != "self" or act.origin == "takeover") and s < 1:
                # a stealth share of the rows from the account's own session, the others from a second place
                sig.add("concurrent_use")
            if act.view_action != "view" or act.pull_channel == "api":
                sig.add("out_of_role")
            if self.leaver:
                sig.add("leaving")
            if self.layoff_team:
                sig.add("layoff_team")
            out[act.phase] = signals.check(sig, f"{self.id} phase {act.phase}")
        return out

    # ---- plan ---------------------------------------------------------------------------------

    def plan(self, cfg: SimConfig, staff: dict[str, pl.DataFrame], incident_id: int, knobs: StaffKnobs) -> Plan:
        """Pick the actors by fit and lay the phases out over the window."""
        # keyed by the scenario too: two scenarios drawing from one pool (support agents) picked the same actors in the
        # datasets of one world (public seeds), and a detector that remembered one dataset's actors caught the other's
        r = rng(cfg.root, f"scenario-plan:{self.id}", incident_id)
        start = cfg.time.start
        first = cfg.time.warmup_days + knobs.start_offset
        if first >= cfg.time.days - 1:
            raise ScenarioError(
                f"{self.id}: knobs.start_offset={knobs.start_offset} puts the start (day {first}) at or past the end of the span "
                f"({cfg.time.days} days, {cfg.time.warmup_days} of warm-up); lower start_offset or lengthen time"
            )
        first_date = start + dt.timedelta(days=first)
        emp = staff["employees"]
        # hired a month before the span, in one role through it (steady_roles), not leaving within two days
        active = steady_roles(emp, staff["employee_roles"], cfg).filter(
            (pl.col("hire_date") < start - dt.timedelta(days=30))
            & (pl.col("termination_date").is_null() | (pl.col("termination_date") > first_date + dt.timedelta(days=2)))
        )
        fit, note = self._fit(cfg, emp, active, first_date, knobs)
        pick = np.sort(r.choice(fit.height, size=knobs.actors, replace=False))
        chosen = fit[pick]
        actors = tuple(int(x) for x in chosen["employee_id"])
        end = min(cfg.time.days, first + knobs.duration_days)
        if self.leaver and note.startswith("leaves"):
            # the window ends at the (earliest) departure; it starts duration days before, not before the start day
            term = min((d - start).days for d in chosen["termination_date"].to_list())
            end = min(cfg.time.days, term)
            first = max(first, end - knobs.duration_days)
        # a colleague employed through the window: an account or machine used on or after its holder's last day has
        # rows no benign leaver has (a red team found one such day in 240 incidents, an exact rule)
        staying = active.filter(
            pl.col("termination_date").is_null() | (pl.col("termination_date") >= start + dt.timedelta(days=end))
        )
        colleagues = self._colleagues(r, staying, chosen) if self._needs_colleague() else (-1,) * len(actors)
        if end - first < 2:
            raise ScenarioError(
                f"{self.id}: the window (days {first}-{end}) is shorter than 2 days; lower start_offset or lengthen time"
            )
        phases = self._phases(first, end, knobs)
        n_targets = max(a.targets for a in self.acts)
        existing = signed_up(cfg, first)  # people who exist when the snooping starts
        targets = (
            tuple(
                tuple(int(x) for x in np.sort(r.choice(existing, size=min(n_targets, existing), replace=False))) for _ in actors
            )
            if n_targets
            else ()
        )
        # what a detector could know of the rule: not the departures to come (a leaver's scenario picks among those
        # leaving in the span, which the employees table shows no detector before they are announced), so the role fit
        public = active.filter(pl.col("role").is_in(self.roles)) if self.leaver else fit
        pool = tuple(int(x) for x in public["employee_id"].sort())
        return Plan(incident_id, actors, colleagues, first, end, phases, knobs, note, targets, pool)

    def _fit(
        self, cfg: SimConfig, emp: pl.DataFrame, active: pl.DataFrame, first_date: dt.date, knobs: StaffKnobs
    ) -> tuple[pl.DataFrame, str]:
        """The employees who fit (role; a leaver; a survivor of the team that lost the most people) and how they were chosen."""
        fit = active.filter(pl.col("role").is_in(self.roles)).sort("employee_id")
        note = "role fit"
        if self.leaver:
            # leavers with room for the scenario: at least a week (or its duration) after the start
            room = first_date + dt.timedelta(days=min(knobs.duration_days, 7))
            leaving = fit.filter(
                pl.col("termination_date").is_not_null()
                & (pl.col("termination_date") >= room)
                & (pl.col("termination_date") <= cfg.time.end)
            )
            if leaving.height >= knobs.actors:
                fit, note = leaving, "leaves during the span"
            else:
                note = "role fit; the departure falls after the span"
        if self.layoff_team:
            # departures in the year before the incident
            gone = emp.filter(
                pl.col("termination_date").is_between(first_date - dt.timedelta(days=365), first_date, closed="left")
            )
            losses = gone.group_by("team").len().sort("len", "team", descending=[True, False])
            for team in losses["team"].to_list():
                members = fit.filter(pl.col("team") == team)
                if members.height >= knobs.actors:
                    fit, note = members, f"survivor of team {team}, which lost the most people"
                    break
        if fit.height < knobs.actors:
            raise ScenarioError(
                f"{self.id}: knobs.actors={knobs.actors} but only {fit.height} active employees fit (roles {', '.join(self.roles)}); "
                f"lower actors or raise world.employees"
            )
        return fit, note

    def _needs_colleague(self) -> bool:
        return any(a.identity != "self" for a in self.acts)

    @classmethod
    def _colleagues(cls, r: np.random.Generator, staying: pl.DataFrame, chosen: pl.DataFrame) -> tuple[int, ...]:
        """One colleague per actor, each an account no other actor of the incident holds or uses: two actors' rows on one
        account and day numbered the account's tickets on each on their own, so one ticket id came from two sessions
        (a red team's exact rule; :func:`simulator.engine.plan_incidents` keeps them apart across incidents)."""
        used = set(chosen["employee_id"].to_list())
        out = []
        for row in chosen.iter_rows(named=True):
            c = cls._colleague(r, staying.filter(~pl.col("employee_id").is_in(sorted(used))), row)
            out.append(c)
            used.add(c)
        return tuple(out)

    @staticmethod
    def _colleague(r: np.random.Generator, active: pl.DataFrame, row: dict) -> int:
        """A colleague of the actor: same team if possible, else same role, else anyone active."""
        for col in ("team", "role"):
            peers = active.filter((pl.col(col) == row[col]) & (pl.col("employee_id") != row["employee_id"]))
            if peers.height:
                return int(peers["employee_id"].sort()[int(r.integers(peers.height))])
        others = active.filter(pl.col("employee_id") != row["employee_id"])["employee_id"].sort()
        return int(others[int(r.integers(len(others)))]) if len(others) else -1

    def _phases(self, first: int, end: int, knobs: StaffKnobs) -> tuple[tuple[str, int, int], ...]:
        if len(self.acts) == 1:
            return ((self.acts[0].phase, first, end),)
        cut = min(end - 1, max(first + 1, first + round(getattr(knobs, "phase_split", 0.5) * (end - first))))
        return ((self.acts[0].phase, first, cut), (self.acts[1].phase, cut, end))

    def window(self, plan: Plan) -> tuple[int, int]:
        """First and one-past-last day index of malicious activity."""
        return plan.first_day, plan.end_day

    def phases(self, plan: Plan) -> str:
        """Phase layout as text for the incidents table."""
        return ";".join(f"{name}:{a}-{b}" for name, a, b in plan.phases)

    # ---- render -------------------------------------------------------------------------------

    def render(self, plan: Plan, cfg: SimConfig, day_index: int, block: int, ctx: dict) -> dict[str, pl.DataFrame]:
        """Nothing in the customers' streams."""
        return {}

    def render_staff(self, plan: Plan, cfg: SimConfig, day_index: int, sd: StaffDay) -> dict[str, pl.DataFrame]:
        """Admin and auth rows of one day (unsorted; ``phase`` column; hidden exposure columns).

        Everything but the declared signals comes from the actor's own day (:class:`StaffDay`):
        their session's address and device, read times inside their working hours, tickets their
        ordinary reads carry, customers who exist on the day.
        """
        if not plan.first_day <= day_index < plan.end_day:
            return {}
        phase_i = next(i for i, (_, a, b) in enumerate(plan.phases) if a <= day_index < b)
        act = self.acts[phase_i]
        admin, auth = [], []
        for j in range(len(plan.actors)):
            ad = _ActorDay(plan, act, cfg, day_index, sd, j, rng(cfg.root, "scenario-staff", plan.incident_id, day_index, j))
            counts = self._counts(ad)
            if counts is None:
                continue
            day = self._sessions(ad)
            ts, sessions = self._when(ad, counts.views + counts.pulls, day)
            admin.append(self._admin_rows(ad, counts, day, ts, sessions))
            # a login opens each session that is not the account's ordinary working session of the day; a daytime
            # one signs in again later as a benign working day does (a stream of its own: the other draws stay)
            again = rng(cfg.root, "scenario-relogin", plan.incident_id, day_index, j)
            auth += [self._login(act, sd, day.account, sess, again, night) for _, sess, night, login in sessions if login]
        out = {}
        if admin:
            out["admin"] = pl.concat(admin, how="diagonal_relaxed")
        if auth:
            out["auth"] = pl.concat(auth, how="diagonal_relaxed")
        return out

    def _counts(self, ad: _ActorDay) -> _Counts | None:
        """How many single reads, pulls and reads done as routine queries the actor makes on the day (None: none)."""
        plan, act, sd, r, actor, s = ad.plan, ad.act, ad.sd, ad.r, ad.actor, ad.stealth
        if not all(sd.employed(e) for e in (actor, plan.colleagues[ad.j]) if e >= 0):
            # gone (a non-leaver may leave during the window): no benign account has a row from its holder's last
            # day on, so nor does the attack's; an outsider's access to a taken-over account ends with it too
            return None
        if not sd.works(actor) and not (act.days_off and r.random() < 1 - s):
            return None  # a day off (rota, weekend, holiday): only blatant actors come in
        _, p_first, p_end = next(p for p in plan.phases if p[1] <= ad.day_index < p[2])
        ramp = (1 + 2 * (ad.day_index - p_first + 0.5) / max(p_end - p_first, 1)) / 2 if act.ramp else 1.0
        vol = plan.knobs.rate * (1 - 0.75 * s) * ramp
        n_views = int(r.poisson(act.views * vol))
        # people whose role never pulls in bulk (support, logistics) give up pulls as they hide
        pull_habit = 1.0 if sd.role(actor) in BULK_ROLES else 1 - s
        n_pulls = int(r.poisson(act.pulls * vol * pull_habit))
        # and people whose routine is batch queries (analysts) read as their peers do: a stealth
        # share of their single reads becomes routine queries, so their rows keep the role's mix
        share = single_read_share(sd.role(actor))
        as_query = int(r.binomial(n_views, s * (1 - share)))
        n_views, n_queries = n_views - as_query, as_query
        n_pulls += n_queries
        if sd.role(actor) in BULK_ROLES and share < 1 and n_pulls:
            # and the other way: pulls run as routine queries come with the odd single read a stealth share of
            # the time, as the role's routine queries do (an analyst's two opens to six queries); without them a
            # slow drip at stealth 1 and rate 4 was all queries, where analysts' rows are a quarter single reads
            # (a stream of its own: the day's other draws stay as they were)
            lack = share * n_pulls / (1 - share) - n_views
            if lack > 0:
                n_views += int(rng(ad.cfg.root, "scenario-mix", plan.incident_id, ad.day_index, ad.j).poisson(s * lack))
        if ad.day_index == plan.first_day and n_views + n_pulls == 0:  # the incident starts on its first day
            n_views, n_pulls = (1, 0) if act.views >= act.pulls * pull_habit else (0, 1)
        return _Counts(n_views, n_pulls, n_queries) if n_views + n_pulls else None

    def _sessions(self, ad: _ActorDay) -> _Day:
        """The sessions the actor's rows of the day come from (see :class:`_Day`)."""
        plan, act, sd, r, actor, s = ad.plan, ad.act, ad.sd, ad.r, ad.actor, ad.stealth
        colleague = plan.colleagues[ad.j]
        account = colleague if act.identity == "as_colleague" else actor  # whose account the rows carry
        device_of = colleague if act.identity == "colleague_device" else actor  # whose machine they run on
        day_s = sd.session(actor, r)
        night_s = sd.night_session(actor, r)
        own = None
        if act.origin == "takeover":
            # an outsider's own device; blatant: abroad from the first day; stealthy: at home at first (their
            # broadband, or a phone's hotspot, drawn as an employee's remote day without the VPN is), abroad only
            # for the last (1 - stealth)^2 share of the days
            abroad = ad.day_index >= plan.end_day - np.ceil((1 - s) ** 2 * (plan.end_day - plan.first_day))
            u = rng(ad.cfg.root, "scenario-ip", plan.incident_id, ad.j).random(2)
            ip1, _, idx = pools.addresses_in(pools.FOREIGN_RESIDENTIAL, u[:1], u[1:])
            if not abroad:
                ip1 = direct_addresses(ad.cfg.root, "outsider", np.array([plan.incident_id * 1000 + ad.j]), ad.day_index)
            device = sd.new_device(plan.incident_id * 1000 + ad.j)
            # the outsider keeps their own hours, a session of the working day; stealthy: the
            # account holder's hours (drawn as the holder's own starts are drawn)
            own_start = sd.usual_start(actor, r) if r.random() < s else sd.t0 + int(r.integers(8 * HOUR, 18 * HOUR))
            # a domestic address carries the company's country, as customers' and staff's own do
            where = str(pools.FOREIGN_RESIDENTIAL.country[idx[0]]) if abroad else ad.cfg.time.home_country
            day_s = night_s = Session(own_start, int(ip1[0]), where, device)
            if s > 0:
                # stealthy: the employee's own session, not a second one beside it. On a day the holder works,
                # the outsider drives the holder's laptop in the holder's working session (an infostealer's remote
                # access): their address, device and hours. A replay from a place of its own while the holder
                # works put the account at two addresses at once, their rows taking turns (102 of 103 attack days
                # at stealth 1, 28 of 32,670 benign employee-days). On a day off (blatant shares only) the stolen
                # session is replayed through the company VPN, as the holder's own remote day would be drawn
                own = sd.session(actor, r)
        else:
            dev = sd.session(device_of, r).device if device_of != actor else day_s.device
            if act.identity == "as_colleague":
                # the colleague's account is logged into from the actor's place, at a start of its own
                # (the actor's own login of the day opens the actor's session, not this one)
                day_s = Session(sd.usual_start(actor, r), day_s.ip, day_s.country, day_s.device)
            if act.identity != "self" and s > 0:
                # stealthy: some reads from the account's own session (the colleague's unlocked machine
                # while they are away; the actor's own laptop for his own account), with no second device
                own = sd.session(account, r) if account != actor else day_s
            day_s = Session(day_s.start, day_s.ip, day_s.country, dev)
            night_s = Session(night_s.start, night_s.ip, night_s.country, dev)
        return _Day(account, day_s, night_s, own)

    @staticmethod
    def _when(ad: _ActorDay, n: int, day: _Day) -> tuple[np.ndarray, list[tuple[np.ndarray, Session, bool, bool]]]:
        """Times of the day's ``n`` rows and the sessions they come from: (row mask, session, at night,
        whether it needs a login, i.e. is not the account's ordinary working session of the day)."""
        act, sd, r, s = ad.act, ad.sd, ad.r, ad.stealth
        # inside the actor's working hours, or at night (the blatant share shrinks with stealth); a
        # night session starts in the small hours (a minute after its login, as every session) and
        # its rows come after its start, before 6h
        night = r.random(n) < act.night * (1 - s)
        night_start = sd.night_start(r)
        at_night = sd.night_times(night_start, n, r)
        ts = np.where(night, at_night, sd.work_times(day.day, n, r))
        night_s = Session(night_start, day.night.ip, day.night.country, day.night.device)
        # stealthy: a stealth share of the day's rows come from the account's own session (see _sessions)
        hidden = (~night & (r.random(n) < s)) if day.own is not None else np.zeros(n, dtype=bool)
        if hidden.any() and day.own is not None:
            ts = np.where(hidden, sd.work_times(day.own, n, r), ts)
        away = not sd.works(day.account)  # the account holder is not at work: no session of theirs is open
        takeover = act.origin == "takeover"
        sessions = [
            (night, night_s, True, True),
            (~night & ~hidden, day.day, False, takeover or act.identity == "as_colleague" or away),
        ]
        if day.own is not None:
            sessions.append((hidden, day.own, False, away))
        return ts, [x for x in sessions if x[0].any()]

    def _admin_rows(
        self, ad: _ActorDay, c: _Counts, day: _Day, ts: np.ndarray, sessions: list[tuple[np.ndarray, Session, bool, bool]]
    ) -> pl.DataFrame:
        """The actor's admin rows of the day: single reads (fixed targets or anyone who exists), then bulk pulls over an id range."""
        plan, act, sd, r, s = ad.plan, ad.act, ad.sd, ad.r, ad.stealth
        n = c.views + c.pulls
        is_pull = np.arange(n) >= c.views
        converted = np.arange(n) >= n - c.queries  # single reads done as routine queries (see _counts)
        if plan.targets:
            tg = np.asarray(plan.targets[ad.j], dtype=np.int64)
            customer = tg[r.integers(0, len(tg), n)]
        else:
            customer = sd.customers(n, r)
        # the share of opens tied to a ticket moves from the scenario's to that of the account's role
        ticket_p = act.ticket + (TICKET_SHARE.get(sd.role(day.account), 0.8) - act.ticket) * s
        tied = r.random(n) < ticket_p
        # pull sizes move from the scenario's toward the analysts' routine median (geometrically)
        size = np.where(converted, ROUTINE_ROWS, act.pull_rows ** (1 - s) * ROUTINE_ROWS**s)
        sigma = np.where(converted, QUERY_SIGMA, 0.5 * (1 - s) + QUERY_SIGMA * s)  # spread toward the routine queries'
        rows = np.minimum(scaled_rows(ad.cfg, np.exp(r.normal(np.log(np.maximum(size, 1)), sigma, n))), sd.customers_signed_up)
        lo = sd.pull_ranges(rows, r)
        routine = (r.random(n) < s) | converted  # stealthy pulls run as routine SQL queries
        channel = np.where(is_pull, np.where(routine, "sql", act.pull_channel), "console")
        action = np.where(is_pull, np.where(channel == "sql", "query", "export"), self._opens(act, sd, day.account, n, s, r))
        ticket = self._tickets(sd, day.account, is_pull, ~tied | (is_pull & (channel == "sql")), sessions)
        return pl.DataFrame(
            {
                "ts": ts,
                "employee_id": np.full(n, day.account, dtype=np.int64),
                "customer_id": pl.Series(customer).set(pl.Series(is_pull), None),
                "row_count": np.where(is_pull, rows, 1),
                "action": action.tolist(),
                "channel": channel.tolist(),
                "ticket_id": pl.Series(ticket).set(pl.Series(~tied | (is_pull & (channel == "sql"))), None),
                "ip": _of_sessions(sessions, n, "ip"),
                "country": _of_sessions(sessions, n, "country").tolist(),
                "device": _of_sessions(sessions, n, "device").tolist(),
                "phase": [act.phase] * n,
                "_xlo": pl.Series(lo).set(pl.Series(~is_pull), None),
                "_xn": pl.Series(rows).set(pl.Series(~is_pull), None),
                # reads of a few chosen people: a targeted record, not a row in a list
                "_xkind": pl.Series(["targeted" if plan.targets else None] * n, dtype=pl.String),
            }
        )

    @staticmethod
    def _tickets(
        sd: StaffDay,
        account: int,
        is_pull: np.ndarray,
        untied: np.ndarray,
        sessions: list[tuple[np.ndarray, Session, bool, bool]],
    ) -> np.ndarray:
        """Ticket ids of the day's rows, as the account's routine rows carry them: record opens go on with the
        account's routine tickets of the day (:meth:`StaffDay.tickets`: opens from its routine working session may
        join its last one; another session's start a new one, a ticket's opens come from one place and device),
        and each pull that carries a ticket gets an export ticket of its own, counted on after the routine ones.
        Untied opens use up their place, as routine ones do."""
        n = len(is_pull)
        routine = sd.routine_session(account)
        rows = [np.flatnonzero(mask & ~is_pull) for mask, *_ in sessions]
        own = [
            routine is not None and not login and (sess.ip, sess.device) == (routine.ip, routine.device)
            for _, sess, _, login in sessions
        ]
        numbered = sd.tickets(account, [len(x) for x in rows], own)
        ticket = np.zeros(n, dtype=np.int64)
        if rows:
            ticket[np.concatenate(rows)] = numbered
        carries = np.flatnonzero(is_pull & ~untied)
        ticket[carries] = sd.export_tickets(account, len(carries))
        return ticket

    @staticmethod
    def _opens(act: Act, sd: StaffDay, account: int, n: int, s: float, r: np.random.Generator) -> np.ndarray:
        """Actions of ``n`` record opens: the account's role mix, or the scenario's out-of-role action
        (edits by support), of which a stealthy actor does fewer, the rest plain opens (OUT_OF_ROLE_FLOOR at stealth 1)."""
        opens = sd.view_actions(account, n, r)
        if act.view_action == "view":
            return opens
        if s == 0:
            return np.full(n, act.view_action, dtype=object)
        return np.where(r.random(n) < 1 - (1 - OUT_OF_ROLE_FLOOR) * s, act.view_action, opens)

    @staticmethod
    def _login(act: Act, sd: StaffDay, account: int, sess: Session, r: np.random.Generator, night: bool) -> pl.DataFrame:
        """The login that opens a session of the day's rows (its rows all come after the session's start) and,
        for a daytime session, its later logins (:meth:`StaffDay.relogin_times`): benign working sessions sign
        in again (a lapsed sign-on, a dropped VPN) and night ones do not. With one login per session, the
        attack's logins were all at a session's start where a quarter of benign ones come later in the day."""
        ts = [sd.login_time(sess)] + ([] if night else sd.relogin_times(sess, r).tolist())
        n = len(ts)
        return pl.DataFrame(
            {
                # a minute before the session's start, as benign logins (never tied to a row's time)
                "ts": ts,
                "event": ["employee_login"] * n,
                "employee_id": [account] * n,
                "ip": [sess.ip] * n,
                "country": [sess.country] * n,
                "phase": [act.phase] * n,
            }
        )


def _of_sessions(sessions: list[tuple[np.ndarray, Session, bool, bool]], n: int, attr: str) -> np.ndarray:
    """One attribute of the session each of ``n`` rows comes from."""
    out = np.empty(n, dtype=np.int64 if attr == "ip" else object)
    for mask, sess, _, _ in sessions:
        out[mask] = getattr(sess, attr)
    return out


@dataclass(frozen=True)
class _ActorDay:
    """One actor's day of an incident: what every rendering step needs."""

    plan: Plan
    act: Act  # the phase of the day
    cfg: SimConfig
    day_index: int
    sd: StaffDay
    j: int  # the actor's index in the plan
    r: np.random.Generator  # the actor-day's generator: every step draws from it in turn

    @property
    def actor(self) -> int:
        """The actor's employee id."""
        return self.plan.actors[self.j]

    @property
    def stealth(self) -> float:
        """The incident's stealth knob."""
        return self.plan.knobs.stealth


@dataclass(frozen=True)
class _Counts:
    """An actor's work of one day: single reads, bulk pulls, and how many of the pulls are reads done as routine queries."""

    views: int
    pulls: int
    queries: int


@dataclass(frozen=True)
class _Day:
    """The sessions an actor's rows of one day come from."""

    account: int  # whose account the rows carry
    day: Session  # the working session the rows come from (device: whose machine they run on)
    night: Session  # the night session (from home, through the VPN)
    own: Session | None  # stealthy: the account's own session, which some rows come from (None: not used)


# ---- the catalogue ------------------------------------------------------------------------------


def _knobs(model_name: str, base: type[StaffKnobs] = StaffKnobs, **defaults: object) -> type[StaffKnobs]:
    """A Knobs model with scenario-specific defaults (same fields, same checks), importable by name for pickling."""
    fields = {
        name: (base.model_fields[name].annotation, Field(value, **_constraints(base, name))) for name, value in defaults.items()
    }
    model = create_model(model_name, __base__=base, __module__=__name__, **fields)  # type: ignore[call-overload]
    globals()[model_name] = model
    return model


def _constraints(base: type[StaffKnobs], name: str) -> dict:
    info = base.model_fields[name]
    out: dict = {"description": info.description}
    for m in info.metadata:
        for attr in ("ge", "gt", "le", "lt"):
            if getattr(m, attr, None) is not None:
                out[attr] = getattr(m, attr)
    return out


class BulkExportBeforeDeparture(StaffScenario):
    """An employee who gives notice and exports far more than usual before leaving."""

    id = "bulk-export-before-departure-v2"
    summary = "an employee with export rights works out the notice period, then exports far more than usual before leaving"
    roles = ("analyst", "administrator")
    leaver = True
    Knobs = _knobs("BulkExportBeforeDepartureKnobs", PhasedKnobs, duration_days=14, stealth=0.5, phase_split=0.5)
    acts = (
        Act("notice", pulls=0.6, pull_rows=8_000, night=0.2),
        Act("exfiltration", pulls=3.0, pull_rows=30_000, night=0.4),
    )


class SnoopingAgent(StaffScenario):
    """A support agent who opens records with no ticket: neighbours, celebrities, an ex."""

    id = "snooping-agent-v2"
    summary = "a support or logistics agent opens a small set of people's records again and again, with no ticket"
    roles = ("support_agent", "logistics")
    Knobs = _knobs("SnoopingAgentKnobs", duration_days=21, stealth=0.5)
    acts = (Act("snooping", views=8.0, ticket=0.0, targets=25),)


class CompromisedEmployee(StaffScenario):
    """Someone else using an employee's account: new device, another country, odd hours."""

    id = "compromised-employee-v3"
    summary = "an outsider uses an employee's account from a new device and another country at odd hours, scraping records"
    roles = RECORD_ROLES
    Knobs = _knobs("CompromisedEmployeeKnobs", duration_days=6, stealth=0.5)
    acts = (Act("takeover", views=60.0, pulls=0.3, pull_rows=5_000, night=0.8, origin="takeover", days_off=True),)


class SlowDripAnalyst(StaffScenario):
    """An analyst with legitimate bulk rights who siphons a little every day."""

    id = "slow-drip-analyst-v2"
    summary = "an analyst with legitimate bulk rights siphons a few thousand records every day for weeks"
    roles = ("analyst",)
    Knobs = _knobs("SlowDripAnalystKnobs", duration_days=30, stealth=0.5)
    acts = (Act("drip", pulls=1.2, pull_rows=6_000, night=0.3, pull_channel="export"),)


class PrivilegeMisuse(StaffScenario):
    """Access to fields or actions outside the role."""

    id = "privilege-misuse-v3"
    summary = "a support or logistics employee edits customer records and exports lists, actions outside the role"
    roles = ("support_agent", "logistics")
    Knobs = _knobs("PrivilegeMisuseKnobs", duration_days=10, stealth=0.5)
    acts = (Act("misuse", views=10.0, view_action="update", ticket=0.2, pulls=0.3, pull_rows=2_000),)


# The five classic insider scripts (the CERT insider-threat test data set), in this world.


class AfterHoursTheft(StaffScenario):
    """CERT script 1: starts working after hours, takes data, leaves shortly after."""

    id = "classic-after-hours-theft-v2"
    summary = "classic 1: an employee who never worked late starts logging in at night, takes data, and leaves"
    roles = RECORD_ROLES
    leaver = True
    Knobs = _knobs("AfterHoursTheftKnobs", PhasedKnobs, duration_days=10, stealth=0.5, phase_split=0.6)
    acts = (
        Act("after-hours", views=15.0, night=0.9, days_off=True),
        Act("theft", views=10.0, pulls=1.5, pull_rows=8_000, night=0.9, days_off=True),
    )


class JobHuntThenTheft(StaffScenario):
    """CERT script 2: job hunting, then takes data at a far higher rate than before leaving."""

    id = "classic-job-hunt-theft-v2"
    summary = "classic 2: an employee scouts what to take while job hunting, then takes it at a far higher rate before leaving"
    roles = RECORD_ROLES
    leaver = True
    Knobs = _knobs("JobHuntThenTheftKnobs", PhasedKnobs, duration_days=20, stealth=0.5, phase_split=0.6)
    acts = (
        Act("job-hunting", pulls=1.0, pull_rows=400, pull_channel="sql", ticket=0.5),
        Act("theft", views=120.0, pulls=2.0, pull_rows=20_000, night=0.2),
    )


class AdminImpersonation(StaffScenario):
    """CERT script 3: an administrator takes over a colleague's login and acts as them."""

    id = "classic-admin-impersonation-v3"
    summary = "classic 3: an administrator obtains a colleague's login, then reads, edits and exports as that colleague from his own device"
    roles = ("administrator",)
    Knobs = _knobs("AdminImpersonationKnobs", PhasedKnobs, duration_days=6, stealth=0.5, phase_split=0.34)
    acts = (
        Act("capture", views=12.0, night=0.5, identity="as_colleague"),
        Act("impersonation", views=25.0, view_action="update", pulls=1.0, pull_rows=15_000, night=0.5, identity="as_colleague"),
    )


class ColleagueMailout(StaffScenario):
    """CERT script 4: reads data on a colleague's machine and mails it out, more and more often."""

    id = "classic-colleague-mailout-v3"
    summary = "classic 4: an employee works from a colleague's machine and mails records out, more and more often"
    roles = ("support_agent", "logistics", "analyst")
    Knobs = _knobs("ColleagueMailoutKnobs", duration_days=21, stealth=0.5)
    acts = (Act("mailout", views=12.0, pulls=0.6, pull_rows=300, pull_channel="api", identity="colleague_device", ramp=True),)


class LayoffSurvivorUpload(StaffScenario):
    """CERT script 5: a survivor of a team hit by departures uploads data for later use."""

    id = "classic-layoff-survivor-upload-v2"
    summary = (
        "classic 5: a member of the team that lost the most people in the past year uploads customer data to outside storage"
    )
    roles = ACCESS_ROLES
    layoff_team = True
    Knobs = _knobs("LayoffSurvivorUploadKnobs", duration_days=14, stealth=0.5)
    acts = (Act("upload", views=6.0, pulls=1.0, pull_rows=4_000, pull_channel="api"),)
