"""The loop behind `ralph run --phase N`. Read top to bottom, it is the whole protocol:

1. entry: the previous phase's approval (when it asks for one) and the phase's entry checks;
2. each feature not passing, in `depends_on` order: bounded prompt → one agent attempt under
   budget → protected paths compared and restored → the harness runs the checks → record,
   commit when they pass, otherwise try again with the failure in the prompt, or block;
3. the phase's exit checks, then the approval gate.

Control flow for the run as a whole goes by exceptions (`EntryNotMet`, `BudgetExhausted`,
`Interrupted`), each carrying its exit code; everything a feature can do ends in the ledger and
progress.txt before the next step starts, so a crash or Ctrl-C loses at most the attempt in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from harness.agents.base import Agent, AgentEvent, Budget, Result, Task, Usage
from harness.books.git.commits import commit_files, commit_worktree, comparison_lines
from harness.books.git.refs import Refs, check_refs, read_refs
from harness.books.git.repo import (
    committed_text,
    discard_changes,
    head_sha,
    ignored_dirs,
    open_repo,
    require_branch,
    tree_fingerprint,
    uncommitted,
)
from harness.books.layout import PROGRESS_FILE
from harness.books.ledger import (
    MARK,
    clear_inflight,
    read_left_tree,
    take_unverified,
    write_inflight,
    write_left_tree,
    write_unverified,
)
from harness.books.progress import LogEntry
from harness.books.records import Evidence, JobRecord, all_passed, headline_metrics, report_values
from harness.books.requests import write_request
from harness.errors import ExitCode, RalphError
from harness.fileio import clip, environment_root, now_iso, printable
from harness.judge import jobs
from harness.judge.checks import Reporter, plan_labels
from harness.judge.checktree import check_phase
from harness.judge.verdict import FeatureVerdict, Occasion, record_verdict, tampering
from harness.judge.verify import verify_exit, verify_feature
from harness.plan.prd import Feature, Phase
from harness.project import Project
from harness.run import approval
from harness.run.blocks import failing_checks
from harness.run.prompt import attempt_prompts, describe_failure
from harness.sandbox import guards
from harness.sandbox.environment import Environment
from harness.sandbox.proc import Reaper
from harness.sandbox.toolchain import Fingerprint, fingerprint, library_roots
from harness.settings import RunSettings, check_python


class EntryNotMet(RalphError):
    exit_code = ExitCode.ENTRY_NOT_MET


class BudgetExhausted(RalphError):
    exit_code = ExitCode.BUDGET_EXHAUSTED


class Interrupted(RalphError):
    exit_code = ExitCode.INTERRUPTED


class AgentUnusable(RalphError):
    """The agent failed without touching the tree (missing CLI or key, API down): retrying cannot help."""


class AgentOutage(RalphError):
    """The agent's API failed (connection, auth, rate limit, overload) and it changed nothing: not its
    attempt. `error` is the CLI's own one line."""

    def __init__(self, error: str):
        super().__init__(error)
        self.error = error


class DirtyTree(RalphError):
    """Uncommitted changes at start would be committed as the agent's work."""


@dataclass
class Outcome:
    """How a run ended: its exit code and one message for a person."""

    code: ExitCode
    message: str
    blocked: dict[str, str] = field(default_factory=dict)


class Spend:
    """The run-wide budget: agent attempts (iterations), tokens, USD and wall clock."""

    def __init__(self, settings: RunSettings):
        self.settings = settings
        self.started = time.monotonic()
        self.iterations = 0
        self.tokens = 0
        self.cost_usd = 0.0

    def exhausted(self) -> str | None:
        """Why no further attempt may start, or None."""
        s = self.settings
        hours = (time.monotonic() - self.started) / 3600
        if self.iterations >= s.max_iterations:
            return f"--max-iterations {s.max_iterations} reached"
        if self.cost_usd >= s.max_cost_usd:
            return f"--max-cost-usd {s.max_cost_usd:g} reached (${self.cost_usd:.4f} spent)"
        if self.tokens >= s.max_tokens:
            return f"--max-tokens {s.max_tokens} reached ({self.tokens} used)"
        if hours >= s.max_hours:
            return f"--max-hours {s.max_hours:g} reached"
        return None

    def attempt_budget(self, timeout_s: float) -> Budget:
        """What the next attempt may spend: its own limits, capped by what the run has left."""
        s = self.settings
        left_s = s.max_hours * 3600 - (time.monotonic() - self.started)
        return Budget(
            timeout_s=max(1.0, min(timeout_s, left_s)),
            max_turns=s.max_turns,
            max_cost_usd=s.max_cost_usd - self.cost_usd,
            max_tokens=s.max_tokens - self.tokens,
        )

    def add(self, result: Result) -> None:
        self.iterations += 1
        self.tokens += result.usage.total_tokens
        self.cost_usd += result.usage.cost_usd

    def give_back(self) -> None:
        """Un-count an attempt that was not the agent's (an outage); what it spent stays spent."""
        self.iterations -= 1


def _plan_without_passes(text: str) -> object:
    """The plan `text` holds with every feature's `passes` left out (the text itself when it is not JSON)."""
    try:
        data = json.loads(text)
        for f in data.get("features", []) if isinstance(data, dict) else []:
            if isinstance(f, dict):
                f.pop("passes", None)
        return data
    except ValueError:
        return text


class LoopView(Reporter, Protocol):
    """What the loop tells whoever shows the run (views/live.py's RunView), besides check progress."""

    def say(self, text: str, style: str = "") -> None: ...

    def attempt_started(self, feature_id: str, attempt: int, max_attempts: int, *, number: int | None = None) -> None:
        """`attempt` of `max_attempts` in this round; `number`: its name, which goes on across rounds."""

    def agent_event(self, event: AgentEvent) -> None: ...

    def attempt_finished(self, usage: Usage, verdict: str) -> None: ...

    def show_jobs(self, jobs: list[JobRecord], tails: dict[str, str]) -> None: ...


def failure_signature(evidence: list[Evidence]) -> str:
    """Identifies "the same failure": which checks failed, how, and with what output."""
    failing = [f"{e.check}|{e.verdict}|{e.detail}|{e.output_tail}" for e in evidence if not e.passed]
    return hashlib.sha256("\n".join(failing).encode()).hexdigest()


class PhaseRunner:
    """Runs one phase (or one feature of it) with one agent under one set of budgets."""

    # Seconds to wait before each retry after an outage (AgentOutage); once they are used up the run stops
    outage_backoff_s: tuple[float, ...] = (15.0, 60.0, 180.0)

    def __init__(
        self,
        project: Project,
        phase_id: int,
        agent: Agent,
        settings: RunSettings,
        view: LoopView,
        *,
        feature_id: str | None = None,
        ask: Callable[[Phase, str], tuple[str, str, str]] | None = None,
        auto_approve: bool = False,
        allow_dirty: bool = False,
        wait: bool = True,
        search: Callable[[Feature, Spend], None] | None = None,
    ):
        self.project = project
        self.phase = project.prd.phase(phase_id)
        self.agent = agent
        self.settings = settings
        self.view = view
        self.only = project.prd.feature(feature_id) if feature_id else None
        if self.only and self.only.phase != phase_id:
            raise RalphError(f"feature {feature_id} belongs to phase {self.only.phase}, not phase {phase_id}")
        self.ask = ask  # interactive approval prompt: (phase, summary) -> (choice, name, text)
        self.auto_approve = auto_approve
        self.allow_dirty = allow_dirty
        self.wait = wait  # at the end, follow the jobs still running (False: `--no-wait`, exit 7)
        self.search = search  # runs an optimize feature's search (harness/optimize/search.py), given by the CLI;
        # its trials are this run's attempts: they spend `self.spend`
        self.spend = Spend(settings)
        self.entered = False  # past the entry checks: from then on a summary of the run means something
        self.halt: str | None = None  # why the run must stop after the attempt that set it (recorded first)
        project.environment = Environment(settings.sandbox)
        self.start_sha = head_sha(project.repo)
        d = project.prd.defaults
        self.max_attempts = settings.max_attempts or d.max_attempts
        self.attempt_timeout_s = settings.attempt_timeout_s or d.attempt_timeout_s

    # ---------------------------------------------------------------- the run

    def run(self) -> Outcome:
        if not self.project.prd.features_in_phase(self.phase.id):
            raise RalphError(f"phase {self.phase.id} ({self.phase.name}) has no features yet; add some to PRD.json "
                             "(`ralph validate` checks them)")
        self.check_tree()
        self.check_entry()
        self.entered = True
        self.record_lifted()  # lifted when the ledger was opened (checks changed, dependencies pass)
        self.record("run-start", fields={
            "budgets": (f"iterations {self.settings.max_iterations}, attempts {self.max_attempts}/feature, "
                        f"${self.settings.max_cost_usd:g}, {self.settings.max_tokens} tokens, "
                        f"{self.settings.max_hours:g} h, {self.attempt_timeout_s:g} s/attempt"),
            "features": ", ".join(f.id for f in self.todo()) or "none left",
            "sandbox": self.project.environment.kind,
        })
        still = self.work_through()
        blocked = self.blocked()
        if still:
            return Outcome(ExitCode.JOBS_RUNNING, still, blocked)
        if self.only:
            code = ExitCode.BLOCKED if self.only.id in blocked else ExitCode.OK
            status = self.project.ledger.feature(self.only.id).status
            return Outcome(code, f"{self.only.id} is {status}", blocked)
        if blocked:
            self.record("phase-blocked", fields={k: v for k, v in blocked.items()})
            return Outcome(ExitCode.BLOCKED, f"phase {self.phase.id} ended with blocked features", blocked)
        exit_evidence = verify_exit(self.project, self.phase, reporter=self.view)
        if not all_passed(exit_evidence) and self.phase.exit:
            failing = "; ".join(f"{e.check}: {e.detail}" for e in exit_evidence if not e.passed)
            return Outcome(ExitCode.BLOCKED, f"phase {self.phase.id} exit checks fail: {failing}")
        return self.gate()

    def work_through(self) -> str | None:
        """Every feature left, in dependency order; one whose checks run as jobs does not hold up the
        ones that do not depend on it. Then wait for the jobs (collecting each feature as its jobs end,
        and working on what that unblocks or fails), or, with `--no-wait`, stop with them running:
        then the message saying so is returned."""
        ledger = self.project.ledger
        if jobs.resume(self.project) or any(jobs.job_checks(f) for f in self.todo()):
            self.view.say(f"jobs go to the Ray cluster at {jobs.cluster(self.project).address}")
            jobs.cluster(self.project).client  # unreachable: a clear error before any attempt
        while True:
            for feature in self.todo():
                if ledger.feature(feature.id).status == "running":
                    continue
                if any(ledger.feature(d).status == "running" for d in feature.depends_on):
                    continue  # comes round again once its dependency's jobs are collected
                self.work_on(feature)
            running = [f.id for f in self.todo() if ledger.feature(f.id).status == "running"]
            if not running:
                return None
            ids = ", ".join(j.id for f in running for j in ledger.feature(f).jobs if not j.done)
            if not self.wait:
                self.record("jobs-running", fields={"features": ", ".join(running), "jobs": ids})
                return (f"{', '.join(running)}: checks still running as jobs ({ids}); `ralph run` or "
                        "`ralph jobs wait` collects them, `ralph jobs` lists them")
            deadline = self.spend.started + self.settings.max_hours * 3600
            if not jobs.wait(self.project, self.view, features=running, deadline=deadline, first=True):
                self.record("budget", fields={"stopped": f"--max-hours {self.settings.max_hours:g} reached",
                                              "still running": ids})
                raise BudgetExhausted(f"budget exhausted: --max-hours {self.settings.max_hours:g} reached while "
                                      f"jobs run ({ids}); they keep running: `ralph jobs wait` collects them")

    def check_tree(self) -> None:
        """Refuse a detached HEAD, and a dirty tree that is not ralph's own leftovers (or commit it,
        `--allow-dirty`): before the first attempt, so nothing of the user's is taken for the agent's. A plan
        the user edited is committed as theirs (`commit_plan_edits`)."""
        repo = self.project.repo
        require_branch(open_repo(repo))
        own = jobs.own_paths(self.project)  # left by attempts whose checks still run as jobs: theirs, not yours
        dirty = [p for p in uncommitted(repo) if p not in own]
        if dirty and read_left_tree(repo) != tree_fingerprint(repo):
            self.commit_dirty(dirty)
        self.commit_plan_edits()

    def commit_dirty(self, dirty: list[str]) -> None:
        """Refuse the user's uncommitted changes (`dirty`), or commit them as theirs with `--allow-dirty`, unless
        they are mostly an environment (a venv, site-packages, node_modules) that .gitignore should name."""
        repo = self.project.repo
        if not self.allow_dirty:
            listed = "\n".join(f"  {p}" for p in dirty[:20]) + (f"\n  … and {len(dirty) - 20} more" if len(dirty) > 20
                                                                   else "")
            raise DirtyTree(f"the working tree has uncommitted changes, which would be committed as the agent's work:\n"
                            f"{listed}\ncommit or stash them, or pass --allow-dirty to commit them first as your own "
                            "commit")
        environments = Counter(root for p in dirty if (root := environment_root(repo, p)))
        if sum(environments.values()) * 2 > len(dirty):
            found = ", ".join(f"{root} ({n:,} files)" for root, n in environments.most_common(5))
            raise DirtyTree(f"--allow-dirty would commit an environment: {sum(environments.values()):,} of the "
                            f"{len(dirty):,} uncommitted files are in {found}. Add it to .gitignore (`ralph init` "
                            "writes .venv/ there) and run again; nothing was committed")
        done = commit_worktree(repo, "chore: uncommitted changes before ralph run\n\nCommitted by `ralph run "
                                     "--allow-dirty` as the user's own work, before any agent attempt.\n")
        self.start_sha = done.sha
        self.record("dirty-tree-committed", fields={"commit": done.sha, "paths": ", ".join(done.committed)})

    def commit_plan_edits(self) -> None:
        """PRD.json as the user left it, when it differs from HEAD's in more than the `passes` ralph writes:
        committed on its own, as the user's, so the agent's commit holds only what ralph wrote to the plan
        (issue 24: the user's uncommitted edit landed inside the agent's commit)."""
        repo, path = self.project.repo, self.project.prd_path.resolve()
        if not path.is_relative_to(repo):
            return
        rel = path.relative_to(repo).as_posix()
        committed = committed_text(repo, rel)
        if committed is not None and _plan_without_passes(committed) == _plan_without_passes(self.project.prd_text):
            return
        sha = commit_files(repo, [rel], f"chore(plan): {rel} as edited before ralph run\n\nCommitted by `ralph run` "
                                         "as the user's own edit, before any agent attempt.\n")
        self.start_sha = sha
        self.record("plan-committed", fields={"commit": sha, "path": rel})

    def check_entry(self) -> None:
        """Refuse to start unless the phases it follows are approved (if they ask) and entry checks pass."""
        missing = []
        for prev in self.project.prd.prerequisites(self.phase):
            if prev.approval and not self.project.ledger.phase(prev.id).approved:
                missing.append(f"phase {prev.id} ({prev.name}) is not approved: `ralph approve {prev.id} --by NAME`")
        if self.phase.entry:
            evidence = check_phase(self.project, self.phase.entry, self.project.log_dir(f"phase-{self.phase.id}-entry"),
                                        self.view, plan_labels(self.phase.id))
            verdict = "pass" if all_passed(evidence) else "fail"
            self.record("phase-entry", fields={"verdict": verdict}, checks=evidence)
            missing += [f"entry check '{e.check}': {e.verdict}, {e.detail}" for e in evidence if not e.passed]
        if missing:
            items = "\n".join(f"  - {m}" for m in missing)
            raise EntryNotMet(f"phase {self.phase.id} ({self.phase.name}) cannot start:\n{items}")

    def todo(self) -> list[Feature]:
        chosen = [self.only] if self.only else self.project.prd.features_in_phase(self.phase.id)
        return [f for f in chosen if self.project.ledger.feature(f.id).status != "passing"]

    def blocked(self) -> dict[str, str]:
        features = [self.only] if self.only else self.project.prd.features_in_phase(self.phase.id)
        states = {f.id: self.project.ledger.feature(f.id) for f in features}
        return {fid: fs.blocked_reason or "blocked" for fid, fs in states.items() if fs.status == "blocked"}

    # ---------------------------------------------------------------- one feature

    def work_on(self, feature: Feature) -> None:
        """Attempts until the feature passes, is blocked, or the run's budget stops it."""
        ledger = self.project.ledger
        waiting = [d for d in feature.depends_on if ledger.feature(d).status != "passing"]
        if waiting:
            self.block(feature, f"depends on {', '.join(waiting)}, which is not passing", waiting_for=waiting)
            return
        ledger.lift(feature)  # its dependencies pass now, or its checks changed: the cause is gone
        self.record_lifted()
        if ledger.feature(feature.id).status == "blocked":
            if self.only is None:  # blocked in an earlier run: it needs a person, not the same loop again
                self.view.say(f"{feature.id} stays blocked: {ledger.feature(feature.id).blocked_reason} "
                              f"(`ralph unblock {feature.id}` lifts it; `ralph run --feature {feature.id}` "
                              "gives it another round now)")
                return
            ledger.unblock(feature.id)
            self.record("unblocked", subject=feature.id, fields={"by": "ralph run --feature (another round)"})
        if feature.optimize is not None:  # a search, not attempts to pass: trials until its budget ends it
            if self.search is None:
                raise RalphError(f"{feature.id} is an optimize feature, and this run has no search to run it")
            self.search(feature, self.spend)
            return
        last_failure = describe_failure(ledger.feature(feature.id).last_evidence)
        rechecked = self.recheck(feature)
        if rechecked is not None:
            if rechecked.passed or rechecked.status == "running":
                return
            last_failure = describe_failure(rechecked.evidence)
        unchanged_streak, last_signature, outages = 0, None, 0
        while True:
            state = ledger.feature(feature.id)
            if state.status == "passing":
                return
            if state.attempts >= self.max_attempts:
                self.block(feature, f"{failing_checks(state.last_evidence)} ({state.attempts} attempts failed, "
                                    f"max_attempts {self.max_attempts})")
                return
            reason = self.spend.exhausted()
            if reason:
                self.record("budget", subject=feature.id, fields={"stopped": reason})
                raise BudgetExhausted(f"budget exhausted: {reason}; state is saved, `ralph run` resumes")
            before = tree_fingerprint(self.project.repo)
            try:
                result, evidence, tampered = self.attempt(feature, last_failure, before)
            except AgentOutage as outage:
                outages += 1
                self.wait_out(feature, outage, outages)
                continue
            if self.halt:
                raise RalphError(self.halt)
            if all_passed(evidence) or ledger.feature(feature.id).status == "running":
                return  # running: its jobs decide, when they are collected (work_through)
            unchanged = tree_fingerprint(self.project.repo) == before
            if result.status == "error" and unchanged:
                self.record("agent-failed", subject=feature.id, fields={"error": result.error or "unknown"})
                raise AgentUnusable(f"the agent failed on {feature.id} without changing anything: {result.error}; "
                                    "fix that and run again (state is saved)")
            unchanged_streak = unchanged_streak + 1 if unchanged else 0
            signature = failure_signature(evidence)
            if result.status == "budget":
                continue  # the next turn of the loop stops the run with the budget's reason
            if unchanged_streak >= 2:
                self.block(feature, f"{failing_checks(evidence)} (two attempts in a row changed nothing in the tree)")
                return
            if signature == last_signature and not tampered:
                self.block(feature, f"{failing_checks(evidence)} (the same check failed with the same output twice)")
                return
            last_signature, last_failure = signature, describe_failure(evidence)
            if self.settings.reset_on_fail:
                discard_changes(self.project.repo)
                write_left_tree(self.project.repo, tree_fingerprint(self.project.repo))

    def recheck(self, feature: Feature) -> FeatureVerdict | None:
        """The verdict on the tree an interrupted verification of `feature` kept, checked again before the agent
        gets another attempt (issue 24: the rerun ran the agent again); None when there is no such tree, or it
        has changed since (then the attempt goes ahead as usual)."""
        kept = take_unverified(self.project.repo)
        if kept is None or kept.get("feature") != feature.id or kept.get("tree") != tree_fingerprint(self.project.repo):
            return None
        self.view.say(f"{feature.id}: checking again the tree the interrupted verification kept")
        occasion = Occasion("verify", {"after": "an interrupted verification; the tree it kept, checked again"})
        try:
            return verify_feature(self.project, feature, commit=True, reporter=self.view, occasion=occasion,
                                  shared=ignored_dirs(self.project.repo), wait=False)
        except KeyboardInterrupt:  # interrupted again: the next run still owes it a check
            write_unverified(self.project.repo, feature.id, kept["tree"])
            raise

    def wait_out(self, feature: Feature, outage: AgentOutage, outages: int) -> None:
        """After the `outages`-th outage in a row: wait before the retry (`outage_backoff_s`), or, once those
        waits are used up, stop the run with the CLI's own error (nothing was charged)."""
        if outages > len(self.outage_backoff_s):
            raise AgentUnusable(f"the agent's API failed {outages} times in a row on {feature.id} (none charged as an "
                                f"attempt): {outage.error}; fix that (network, key, quota) and `ralph run` again")
        wait = self.outage_backoff_s[outages - 1]
        self.view.say(f"{feature.id}: the agent's API failed, not charged as an attempt: {outage.error}; retry "
                      f"{outages} of {len(self.outage_backoff_s)} in {wait:g}s", style="yellow")
        time.sleep(wait)

    def attempt(self, feature: Feature, last_failure: str, before: str | None = None
                ) -> tuple[Result, list[Evidence], bool]:
        """One agent attempt and its verification; returns (agent result, evidence, tampered).

        What a crash needs to undo it (harness/run/recovery.py) is on disk before the agent starts.
        An attempt that ends by no fault of the agent (Ctrl-C, SIGTERM, a harness error, an outage
        that left the tree as `before`: AgentOutage) is given back to the feature; the protected paths
        and refs are put back whatever happened.
        """
        project = self.project
        number = project.ledger.begin_attempt(feature.id)
        snapshot, refs = project.snapshot(), read_refs(project.repo)
        mark = f"{os.getpid()}-{time.time_ns()}"
        write_inflight(project.repo, {"feature": feature.id, "attempt": number, "start_sha": refs.sha,
                                      "refs": refs.to_json(), "snapshot": snapshot.to_json(), "mark": mark,
                                      "ralph_pid": os.getpid(), "at": now_iso()})
        os.environ[MARK] = mark  # inherited by everything the attempt starts: recovery finds it by this
        try:
            return self._attempt(feature, number, last_failure, snapshot, refs, before)
        except BaseException:  # progress.txt keeps what ralph appended (the interruption, say)
            guards.check_and_restore(project.repo, snapshot.without(PROGRESS_FILE))
            check_refs(project.repo, refs)
            project.ledger.refund_attempt(feature.id)
            raise
        finally:
            os.environ.pop(MARK, None)
            write_left_tree(project.repo, tree_fingerprint(project.repo))  # the agent's work is not a dirty tree
            clear_inflight(project.repo)

    def _attempt(self, feature: Feature, number: int, last_failure: str, snapshot: guards.Snapshot,
                 refs: Refs, before: str | None) -> tuple[Result, list[Evidence], bool]:
        project, ledger = self.project, self.project.ledger
        shared = ignored_dirs(project.repo)  # what the checks may see of the ignored tree: what exists now
        run_dir = project.log_dir(f"{feature.id}-{number}")
        run_dir.mkdir(parents=True, exist_ok=True)
        in_round = ledger.feature(feature.id).attempts  # `number` goes on across rounds; max_attempts counts this
        system, prompt = attempt_prompts(project, feature, in_round, self.max_attempts, last_failure)
        task = Task(
            feature_id=feature.id,
            attempt=in_round,  # as its prompt says: attempt k of max_attempts (a replay script's k-th entry)
            system=system,
            prompt=prompt,
            workdir=project.repo,
            transcript_path=run_dir / "transcript.jsonl",
            protected=project.protected,
            inputs=[project.repo / d for d in shared if d not in project.prd.output_dirs()],
            env_allow=list(project.prd.defaults.env_allow),
            sandbox=self.settings.sandbox,
            on_event=self.view.agent_event,
        )
        (run_dir / "prompt.md").write_text(f"{task.system}\n\n---\n\n{task.prompt}\n", encoding="utf-8")
        self.view.attempt_started(feature.id, in_round, self.max_attempts, number=number)
        pythons = self.toolchain_fingerprint()
        started = time.monotonic()
        try:
            with Reaper():  # whatever the backend started, nothing survives the attempt
                result = self.agent.run(task, self.spend.attempt_budget(self.attempt_timeout_s))
        except KeyboardInterrupt:  # backends return "interrupted" themselves; this covers one that does not
            result = Result("interrupted")
        except Exception as e:  # a backend that broke on what the agent produced: judge the tree it left
            result = Result("error", error=clip(f"the agent backend raised {type(e).__name__}: {e}", 500))
        tampered = guards.check_and_restore(project.repo, snapshot)
        moved, folded = check_refs(project.repo, refs)
        tampered += moved
        toolchain = pythons.changes(self.toolchain_fingerprint()) if pythons else []
        tampered += [f"{path} (a Python that ralph or the checks run)" for path in toolchain[:5]]
        self.spend.add(result)
        ledger.add_usage(feature.id, cost_usd=result.usage.cost_usd, tokens=result.usage.total_tokens)
        if result.status == "interrupted":
            self.record("interrupted", subject=feature.id, fields={"attempt": str(number), "during": "agent",
                                                                   "attempts": "not counted"})
            raise Interrupted(f"interrupted during {feature.id} attempt {number}; `ralph run` resumes")
        if result.outage and not tampered and before is not None and tree_fingerprint(project.repo) == before:
            self.spend.give_back()  # the ledger's count is given back as the exception leaves `attempt`
            self.view.attempt_finished(result.usage, "outage")
            self.record("agent-outage", subject=feature.id, fields={"attempt": str(number), "attempts": "not counted",
                                                                    "error": result.error or "unknown"})
            raise AgentOutage(result.error or "unknown")
        agent_fields = dict(
            agent=self.agent.name, model=self.agent.model or None, turns=result.turns,
            tokens=result.usage.total_tokens, cost_usd=result.usage.cost_usd,
            duration_s=time.monotonic() - started, summary=printable(result.summary),
        )
        fields = {"attempt": str(number), "agent status": result.status}
        if result.error:
            fields["agent error"] = result.error
        if folded:
            fields["agent commits"] = f"{folded} folded into the attempt (the branch was put back; the changes stay)"
        occasion = Occasion("attempt", fields, agent_fields)
        if tampered:
            verdict = record_verdict(project, feature, [tampering(tampered, "by the agent")], occasion,
                                     fields={"verdict": "tampering"})
            self.view.attempt_finished(result.usage, "tampering")
            if toolchain:  # not put back like a protected file: no check may run on it again (the run stops
                # after `attempt` has returned, so the attempt stays counted: raising here would refund it)
                self.halt = (
                    f"the agent changed {len(toolchain)} file(s) of a Python environment that ralph or the checks run "
                    f"({', '.join(toolchain[:3])}); that cannot be undone by ralph and no check may run on it. "
                    "Reinstall that environment (`make setup` after deleting it, or `pip install --force-reinstall`), "
                    "then `ralph run` again, with --sandbox bwrap (it keeps toolchains read-only)")
            return result, verdict.evidence, True
        try:
            verdict = verify_feature(project, feature, commit=True, reporter=self.view, occasion=occasion,
                                     baseline=snapshot, refs=refs, shared=shared, wait=False)
        except KeyboardInterrupt:
            guards.check_and_restore(project.repo, snapshot.without(PROGRESS_FILE))
            write_unverified(project.repo, feature.id, tree_fingerprint(project.repo))
            self.record("interrupted", subject=feature.id, fields={"attempt": str(number), "during": "checks",
                                                                   "attempts": "not counted",
                                                                   "next": "the kept tree is checked again first"})
            raise Interrupted(f"interrupted while verifying {feature.id}; `ralph run` checks the tree it kept again, "
                              "then resumes") from None
        except Exception as e:  # fails closed: judging the agent's work broke, so the attempt fails, on the record
            verdict = self._unjudged(feature, occasion, snapshot, refs, e)
        self.view.attempt_finished(result.usage, "running" if verdict.status == "running"
                                   else "pass" if verdict.passed else "fail")
        return result, verdict.evidence, any(e.kind == "guard" for e in verdict.evidence)

    def toolchain_fingerprint(self) -> Fingerprint | None:
        """The toolchains' fingerprint (sandbox/toolchain.py) when the agent runs unsandboxed; under a sandbox
        they are read-only to it, and the half second is not spent."""
        if self.project.environment.sandboxed:
            return None
        python = check_python(self.project.repo, self.settings.python)
        return fingerprint(library_roots(self.project.repo, [python.venv] if python.venv else []))

    def _unjudged(self, feature: Feature, occasion: Occasion, snapshot: guards.Snapshot, refs: Refs,
                  error: Exception) -> FeatureVerdict:
        """Record an attempt whose verification raised: failing evidence naming the error, the protected
        paths and refs put back, the attempt counted. Never a refund: an agent that can make the judge
        raise must not get unlimited, unrecorded attempts."""
        guards.check_and_restore(self.project.repo, snapshot.without(PROGRESS_FILE))
        check_refs(self.project.repo, refs)
        detail = clip(f"ralph could not judge this attempt ({type(error).__name__}: {error})", 500)
        evidence = [Evidence(check="judging", kind="guard", verdict="error", detail=detail, duration_s=0.0)]
        return record_verdict(self.project, feature, evidence, occasion, fields={"verdict": "error while judging"})

    def block(self, feature: Feature, reason: str, *, waiting_for: list[str] | None = None) -> None:
        """Block the feature (bound to its checks as they are: changing them lifts it), on the record."""
        self.project.ledger.mark_blocked(feature.id, reason, checks=feature.verify, waiting_for=waiting_for)
        self.record("blocked", subject=feature.id, fields={"reason": reason})
        self.view.say(f"{feature.id} blocked: {reason}", style="bold red")

    def record_lifted(self) -> None:
        """Record (progress.txt) and show the blocks the ledger lifted by itself since the last call."""
        for fid, why in self.project.ledger.take_lifted().items():
            self.record("unblocked", subject=fid, fields={"by": "ralph (the cause is gone)", "why": why})
            self.view.say(f"{fid} unblocked: {why}", style="green")

    def record(self, kind: str, *, subject: str | None = None, fields: dict[str, str] | None = None,
               checks: list[Evidence] | None = None) -> None:
        self.project.progress.append(LogEntry(kind=kind, subject=subject or f"phase {self.phase.id}",
                                           phase=self.phase.id, fields=fields or {}, checks=checks or [],
                                           commit=head_sha(self.project.repo)))

    # ---------------------------------------------------------------- the gate

    def summary(self) -> str:
        """Features, figures, spend and the diff of this run, for the approval prompt and request."""
        lines = [f"Phase {self.phase.id}: {self.phase.name}"]
        for f in self.project.prd.features_in_phase(self.phase.id):
            fs = self.project.ledger.feature(f.id)
            plain = [e for e in fs.last_evidence if e.comparison is None]
            figures = ", ".join(f"{k}={v:.4g}" for k, v in headline_metrics(plain).items())
            lines.append(f"  {f.id} {fs.status} after {fs.attempts} attempt(s), ${fs.cost_usd:.4f}"
                         + (f"; {figures}" if figures else ""))
            lines += [f"    {line}" for line in comparison_lines(fs.last_evidence)]
            lines += [f"    report: {v.text()}" for v in report_values(fs.last_evidence)]
        lines.append(f"This run: {self.spend.iterations} attempt(s), {self.spend.tokens} tokens, "
                     f"${self.spend.cost_usd:.4f}")
        if self.start_sha and self.start_sha != head_sha(self.project.repo):
            lines.append("Diff: " + open_repo(self.project.repo).git.diff("--shortstat", self.start_sha, "HEAD"))
        return "\n".join(lines)

    def gate(self) -> Outcome:
        phase, project = self.phase, self.project
        if not phase.approval:
            return Outcome(ExitCode.OK, f"phase {phase.id} complete (it asks for no approval)")
        if project.ledger.phase(phase.id).approved:
            return Outcome(ExitCode.OK, f"phase {phase.id} complete and already approved")
        summary = self.summary()
        if self.auto_approve:
            approval.approve(project, phase.id, by="ralph run --yes", note="approved automatically: --yes was given",
                             reporter=self.view)
            return Outcome(ExitCode.OK, f"phase {phase.id} complete; approved automatically (--yes, recorded)")
        if self.ask:
            choice, name, text = self.ask(phase, summary)
            if choice == "approve":
                approval.approve(project, phase.id, by=name, note=text, reporter=self.view)
                return Outcome(ExitCode.OK, f"phase {phase.id} approved by {name}")
            if choice == "reject":
                approval.reject(project, phase.id, by=name, reason=text)
                return Outcome(ExitCode.FAILED, f"phase {phase.id} rejected by {name}: {text}")
        path = write_request(project.repo, phase, summary)
        self.record("approval-request", fields={"request": str(path.relative_to(project.repo))})
        return Outcome(ExitCode.AWAITING_APPROVAL,
                       f"phase {phase.id} awaits approval: {path.relative_to(project.repo)}\n"
                       f"approve: ralph approve {phase.id} --by NAME   reject: ralph reject {phase.id} --reason TEXT")
