"""The search behind `ralph run` on a feature with an `optimize` block. Read top to bottom, it is the protocol:

1. the baseline: the tree the search starts at, measured on `seeds` (and the holdout);
2. each trial: the agent gets the plan, the leaderboard so far, the incumbent's diff from the baseline and the
   steer file, makes a change and states a hypothesis; the protected paths (the plan, the fixed paths, the
   holdout) are compared and restored (a change is a crash); the harness measures the candidate on `seeds`
   (judge/checktree.py's rules); the keep rule (keep.py) decides; kept: committed, the new incumbent;
   otherwise: saved under refs/ralph/discarded/<feature>/<n> and as a patch, the tree back to the incumbent;
3. the end (budget, `stop_after_discards` not kept in a row, or `target`): the incumbent against the baseline
   on `confirm_seeds`, never used to choose; the feature passes only when that holds; `ralph/<feature>/best`.

Crash safety: each trial's state (`trial.json`) is written before each step acts (agent, checks, decided), and
the agent's in-flight record (`.ralph/attempt.json`, run/recovery.py) while the agent runs. A killed ralph
resumes: a trial that had not been decided is not counted (its number is used again); a decided one is
finished (commit, or discard) and recorded exactly once. A `--parallel` round's candidates are measured at once and
decided one after another; trial.json names those still undecided, so none of them is counted if ralph dies.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any, Protocol

from harness.agents.base import Agent, AgentEvent, Budget, Result, Task, Usage
from harness.books.git.commits import commit_feature
from harness.books.git.refs import Refs, check_refs, read_refs
from harness.books.git.repo import discard_changes, head_sha, ignored_dirs, open_repo, tree_fingerprint, uncommitted
from harness.books.git.trees import Candidate, candidate
from harness.books.ledger import MARK, clear_inflight, write_inflight, write_left_tree
from harness.books.progress import LogEntry
from harness.books.records import Evidence
from harness.errors import ExitCode, RalphError
from harness.fileio import atomic_write_text, clip, now_iso, printable, sha256_file
from harness.judge.checks import Reporter, plan_labels
from harness.judge.jobs import stop_jobs
from harness.judge.verdict import Occasion, record_verdict, tampering
from harness.optimize.board import Board, Ending, Trial, load_board, optimize_dir, save_board
from harness.optimize.keep import Decision, decide
from harness.optimize.measure import Measurement, holdout_figure, jobs_dir, measure
from harness.optimize.plot import plot_board
from harness.optimize.prompt import HYPOTHESIS_FILE, trial_prompts
from harness.optimize.refs import diff_from, save_discarded, tag_best
from harness.optimize.worktrees import checkout_tree, fold, in_processes, run_agents, worktrees
from harness.plan.prd import Feature, Optimize, unenforced_holdout
from harness.project import Project
from harness.sandbox import guards
from harness.sandbox.proc import Reaper
from harness.settings import RunSettings

TRIAL_FILE = "trial.json"  # the trial in flight, in .ralph/optimize/<feature>/
STEER_FILE = "STEER.md"  # the steering file, in .ralph/optimize/<feature>/: the person's, never the agent's


class SearchStopped(RalphError):
    """The run's own budget (iterations, tokens, USD, hours) stopped the search before its end; it resumes."""

    exit_code = ExitCode.BUDGET_EXHAUSTED


class SearchInterrupted(RalphError):
    exit_code = ExitCode.INTERRUPTED


class Spending(Protocol):
    """The run's own budget as the loop keeps it (run/loop.py's Spend): a search's trials are the run's attempts,
    counted and capped by it like any other."""

    def exhausted(self) -> str | None: ...

    def attempt_budget(self, timeout_s: float) -> Budget: ...

    def add(self, result: Result) -> None: ...


class SearchView(Reporter, Protocol):
    """What the search tells whoever shows the run (views/live.py's RunView)."""

    def say(self, text: str, style: str = "") -> None: ...

    def attempt_started(self, feature_id: str, attempt: int, max_attempts: int) -> None: ...

    def agent_event(self, event: AgentEvent) -> None: ...

    def attempt_finished(self, usage: Usage, verdict: str) -> None: ...


UNCHANGED = "the agent changed nothing (besides its hypothesis): there is no candidate to measure"


def steer_path(repo: Path, feature_id: str) -> Path:
    """`.ralph/optimize/<feature>/STEER.md`: the person's steering text (the agent can neither write nor see it)."""
    return optimize_dir(repo, feature_id) / STEER_FILE


def protected_patterns(feature: Feature, project: Project) -> list[str]:
    """The globs the agent may not change during the search: the plan's, the fixed paths and the holdout."""
    opt = feature.optimize
    assert opt is not None
    hidden = [g for p in (opt.holdout.paths if opt.holdout else []) for g in (p, f"{p}/**")]
    return list(dict.fromkeys([*project.prd.defaults.protected, *opt.fixed, *hidden]))


class Search:
    """Runs one optimize feature's search with one agent; `run(feature)` until its end or the run's budget."""

    def __init__(self, project: Project, agent: Agent, settings: RunSettings, view: SearchView, parallel: int = 1):
        self.project, self.agent, self.settings, self.view = project, agent, settings, view
        self.parallel = parallel  # `--parallel N`: candidates at once, each in its own worktree
        self.repo = project.repo
        d = project.prd.defaults
        self.attempt_timeout_s = settings.attempt_timeout_s or d.attempt_timeout_s

    # ---------------------------------------------------------------- the search

    def run(self, feature: Feature, spend: Spending) -> None:
        """The search of `feature` until its end, or until the run's budget `spend` (which its trials join) is out."""
        self.spend = spend
        opt = feature.optimize
        assert opt is not None
        if problem := unenforced_holdout(feature, self.project.environment.kind):
            raise RalphError(f"{feature.id}: {problem}")
        board = load_board(self.repo, feature.id) or Board(feature=feature.id, metric=opt.metric.key,
                                                            direction=opt.direction, alpha=opt.alpha)
        if board.ending is not None:
            return
        self.stop_jobs(feature)
        self.resume(feature, board)
        if board.baseline is None and not self.baseline(feature, board):
            return
        while (why := self.stop_reason(opt, board)) is None:
            self.run_budget()
            count = min(self.parallel, opt.budget.attempts - len(board.candidates))
            if count > 1:
                self.round(feature, board, count)
            else:
                self.trial(feature, board)
        self.finish(feature, board, why)

    def stop_reason(self, opt: Optimize, board: Board) -> str | None:
        """Why the search ends now (its own budget, discards in a row, the target), or None."""
        wall_s, _, _ = board.spent()
        if len(board.candidates) >= opt.budget.attempts:
            return f"budget.attempts {opt.budget.attempts} reached"
        if wall_s >= opt.budget.hours * 3600:
            return f"budget.hours {opt.budget.hours:g} reached"
        if opt.stop_after_discards and board.not_kept_in_a_row() >= opt.stop_after_discards:
            return f"{opt.stop_after_discards} trials in a row not kept (stop_after_discards)"
        best = board.incumbent
        if opt.target is not None and best is not None and best.mean is not None and best.kind == "candidate":
            if (best.mean >= opt.target) if opt.direction == "max" else (best.mean <= opt.target):
                return f"target {opt.target:g} reached by trial {best.n} (mean {best.mean:.6g})"
        return None

    def run_budget(self) -> None:
        """Stop (resumably: the search is not over) when this run's own budgets are spent."""
        if reason := self.spend.exhausted():
            raise SearchStopped(f"budget exhausted: {reason}; the search is saved, `ralph run` resumes it")

    # ---------------------------------------------------------------- baseline

    def baseline(self, feature: Feature, board: Board) -> bool:
        """Measure the tree as it is (HEAD) on `seeds`: the first incumbent. False (and the feature blocked) when
        its checks fail: a search needs a working start."""
        opt = feature.optimize
        assert opt is not None
        self.view.say(f"{feature.id}: measuring the baseline on seeds {opt.seeds}")
        started = time.monotonic()
        found = self.measure(feature, opt.seeds, "baseline", holdout=True)
        sha = head_sha(self.repo)
        if found.crash:
            board.trials.append(Trial(n=0, kind="baseline", verdict="crash", commit=sha, detail=found.crash,
                                      wall_s=time.monotonic() - started))
            save_board(self.repo, board)
            self.block(feature, f"the baseline's checks fail, so there is nothing to improve on: {found.crash}")
            return False
        discard_changes(self.repo)  # outputs the checks left outside ignored folders are not the agent's work
        trial = Trial.measured(found.per_seed, n=0, kind="baseline", verdict="keep", commit=sha,
                               holdout=found.holdout, wall_s=time.monotonic() - started,
                               compute_hours=found.compute_hours, gpu_hours=found.gpu_hours)
        board.trials.append(trial)
        save_board(self.repo, board)
        self.log("optimize-baseline", feature, trial)
        return True

    # ---------------------------------------------------------------- one trial

    def trial(self, feature: Feature, board: Board) -> None:
        """One candidate in the repository's own working tree."""
        n = len(board.candidates) + 1
        inc_sha, task, number, snapshot, refs = self.prepare(feature, board, [n], [self.repo])
        started = time.monotonic()
        self.view.attempt_started(feature.id, n, self.budget_attempts(feature))
        try:
            result = self.run_agent(task[0])
            moved = guards.check_and_restore(self.repo, snapshot) + check_refs(self.repo, refs)[0]
        finally:
            os.environ.pop(MARK, None)
        self.spend.add(result)
        if result.status == "interrupted":
            self.abandon(feature, [n], "interrupted during the agent's turn")
            raise SearchInterrupted(f"interrupted during {feature.id} trial {n}; `ralph run` resumes the search")
        hypothesis = self.hypothesis(result, self.repo)
        clear_inflight(self.repo)  # the agent's part is over: from here trial.json alone says where we are
        tree = candidate(self.repo).tree
        (found,) = self.measure_candidates(feature, [n], number, inc_sha, [self.repo], [moved])
        self.conclude(feature, board, n, number[0], self.repo, inc_sha, result, moved, found, tree, hypothesis, started)

    def round(self, feature: Feature, board: Board, count: int) -> None:
        """`count` candidates at once (`--parallel`), each in its own worktree from the incumbent; then their checks
        at once, each on its own worktree; then decided one after another, in trial order: a candidate whose
        incumbent moved meanwhile (an earlier one of the round was kept) is compared with the new one."""
        first = len(board.candidates) + 1
        ns = list(range(first, first + count))
        inc_sha = head_sha(self.repo)
        assert inc_sha is not None
        with worktrees(self.repo, inc_sha, count) as paths:
            inc_sha, tasks, numbers, snapshot, refs = self.prepare(feature, board, ns, paths)
            snaps = [guards.snapshot(path, protected_patterns(feature, self.project)) for path in paths]
            self.view.say(f"{feature.id}: trials {ns[0]}-{ns[-1]} at once, each in its own worktree")
            started = time.monotonic()
            resource_tracker.ensure_running()  # multiprocessing's helper, which the checks' pool needs too: not the
            # agents', so started before the Reaper that kills what they leave
            try:
                with Reaper():
                    results = run_agents(self.agent, tasks, self.agent_budget())
                moved_here = guards.check_and_restore(self.repo, snapshot) + check_refs(self.repo, refs)[0]
            finally:
                os.environ.pop(MARK, None)
            for result in results:
                self.spend.add(result)
            clear_inflight(self.repo)
            moved, hypotheses, trees = [], [], []
            for path, snap, result in zip(paths, snaps, results):
                moved.append(moved_here + guards.check_and_restore(path, snap))
                fold(path, inc_sha)  # commits the agent made in its worktree: their changes stay, uncommitted
                hypotheses.append(self.hypothesis(result, path))
                trees.append(candidate(path).tree)
            found = self.measure_candidates(feature, ns, numbers, inc_sha, paths, moved)
            for i, n in enumerate(ns):
                self.conclude(feature, board, n, numbers[i], paths[i], inc_sha, results[i], moved[i], found[i],
                              trees[i], hypotheses[i], started, rest=(ns[i + 1:], numbers[i + 1:]))

    def prepare(self, feature: Feature, board: Board, ns: list[int], roots: list[Path]
                ) -> tuple[str, list[Task], list[int], guards.Snapshot, Refs]:
        """Before the agents start: their prompts and tasks, the attempts counted, the protected paths and refs
        snapshotted and everything recovery needs on disk (trial.json, the in-flight record, the mark)."""
        opt = feature.optimize
        assert opt is not None and board.baseline is not None
        inc_sha = head_sha(self.repo)
        assert inc_sha is not None
        steer = self.steer(feature, board)
        patterns = protected_patterns(feature, self.project)
        protected = self.protected(feature)
        diff = diff_from(self.repo, board.baseline.commit or inc_sha)
        tasks, numbers = [], []
        for n, root in zip(ns, roots):
            system, prompt = trial_prompts(self.repo, feature, board, n, protected, diff, steer)
            run_dir = self.project.log_dir(f"{feature.id}-trial-{n}")
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "prompt.md").write_text(f"{system}\n\n---\n\n{prompt}\n", encoding="utf-8")
            numbers.append(self.project.ledger.begin_attempt(feature.id))
            tasks.append(Task(feature_id=feature.id, attempt=numbers[-1], system=system, prompt=prompt, workdir=root,
                              transcript_path=run_dir / "transcript.jsonl", protected=protected,
                              env_allow=list(self.project.prd.defaults.env_allow), sandbox=self.settings.sandbox,
                              hidden=list(opt.holdout.paths) if opt.holdout else [], on_event=self.view.agent_event))
        snapshot, refs = guards.snapshot(self.repo, patterns), read_refs(self.repo)
        self.write_state(feature, {"stage": "agent", "trials": ns, "incumbent": inc_sha, "attempts": numbers})
        mark = f"{os.getpid()}-{time.time_ns()}"
        write_inflight(self.repo, {"feature": feature.id, "attempt": numbers[0], "start_sha": refs.sha,
                                   "refs": refs.to_json(), "snapshot": snapshot.to_json(), "mark": mark,
                                   "ralph_pid": os.getpid(), "at": now_iso()})
        os.environ[MARK] = mark  # inherited by everything the agents start: recovery finds them by it
        return inc_sha, tasks, numbers, snapshot, refs

    def measure_candidates(self, feature: Feature, ns: list[int], numbers: list[int], inc_sha: str,
                           roots: list[Path], moved: list[list[str]]) -> list[Measurement]:
        """The candidates at `roots` (each checked out at the incumbent) measured on `seeds`: several at once, each
        in a process of its own (their checks run concurrently, each on its own worktree), one here. A candidate
        that tampered is not measured (an empty measurement), nor one where the agent changed nothing (a crash, as
        the loop's attempt that changes nothing is, not a full measurement of the incumbent again). trial.json
        says they are in their checks: a killed ralph abandons them all."""
        opt = feature.optimize
        assert opt is not None
        write_left_tree(self.repo, tree_fingerprint(self.repo))  # a candidate there is ralph's, should it stop now
        self.write_state(feature, {"stage": "checks", "trials": ns, "incumbent": inc_sha, "attempts": numbers})
        todo = [i for i, m in enumerate(moved) if not m and uncommitted(roots[i])]
        calls = [self.measure_args(feature, opt.seeds, f"trial-{ns[i]}", holdout=False, tree=roots[i],
                                   reporter=None if len(todo) > 1 else self.view, attempt=numbers[i]) for i in todo]
        try:
            if len(calls) > 1:
                self.view.say(f"{feature.id}: measuring trials {', '.join(str(ns[i]) for i in todo)} at once")
                done: list[Measurement | Exception] = in_processes(measure, calls)
            else:
                done = []
                for call in calls:
                    try:
                        done.append(measure(**call))
                    except Exception as e:
                        done.append(e)
        except KeyboardInterrupt:
            self.abandon(feature, ns, "interrupted while its checks ran")
            raise SearchInterrupted(f"interrupted during {feature.id} trials {ns}; `ralph run` resumes") from None
        found = [Measurement(crash=None if moved[i] else UNCHANGED) for i in range(len(ns))]
        for i, got in zip(todo, done):  # fails closed: judging a candidate broke, so its trial is a crash, on the record
            found[i] = got if isinstance(got, Measurement) else Measurement(
                crash=clip(f"ralph could not judge this trial ({type(got).__name__}: {got})", 500))
        return found

    def conclude(self, feature: Feature, board: Board, n: int, number: int, root: Path, inc_sha: str, result: Result,
                 moved: list[str], found: Measurement, tree: str, hypothesis: str, started: float,
                 rest: tuple[list[int], list[int]] = ([], [])) -> None:
        """After its checks: decide the candidate at `root` (tree `tree`) against the incumbent as it is now, write
        the decision, then carry it out (`act`). `rest`: the trials of its round still to be decided after it, and
        their attempts (trial.json names them, so a killed ralph abandons them)."""
        opt = feature.optimize
        assert opt is not None
        incumbent = board.incumbent
        assert incumbent is not None
        usage = dict(hypothesis=hypothesis, tokens=result.usage.total_tokens, cost_usd=result.usage.cost_usd,
                     incumbent=incumbent.n, compute_hours=found.compute_hours, gpu_hours=found.gpu_hours)
        if moved:
            trial = Trial(n=n, kind="candidate", verdict="crash", detail=tampering(moved, "by the agent").detail,
                          **usage)
        else:
            trial = self.judged(n, found, incumbent, opt, usage)
            if incumbent.commit != inc_sha and trial.verdict != "crash":
                trial.detail = f"its incumbent moved while it ran: compared with trial {incumbent.n}; {trial.detail}"
        trial.wall_s = time.monotonic() - started
        state = {"stage": "decided", "trials": [n], "incumbent": inc_sha, "attempts": [number], "tree": tree,
                 "root": str(root), "outputs": found.outputs, "rest": rest[0], "rest_attempts": rest[1],
                 "evidence": [e.model_dump(mode="json") for e in found.evidence], "trial": trial.model_dump(mode="json")}
        self.write_state(feature, state)
        self.view.attempt_finished(result.usage, trial.verdict)
        self.act(feature, board, state)

    def judged(self, n: int, found: Measurement, incumbent: Trial, opt: Optimize, usage: dict) -> Trial:
        """The candidate's trial: a crash, or kept / discarded by the keep rule against `incumbent`."""
        if found.crash:
            return Trial(n=n, kind="candidate", verdict="crash", detail=found.crash, **usage)
        decision: Decision = decide(found.per_seed, incumbent.per_seed, direction=opt.direction, alpha=opt.alpha)
        return Trial.measured(found.per_seed, n=n, kind="candidate", verdict="keep" if decision.keep else "discard",
                              diff=decision.diff, p_value=decision.p_value, detail=decision.reason, **usage)

    def agent_budget(self) -> Budget:
        return self.spend.attempt_budget(self.attempt_timeout_s)

    def budget_attempts(self, feature: Feature) -> int:
        assert feature.optimize is not None
        return feature.optimize.budget.attempts

    def run_agent(self, task: Task) -> Result:
        """The agent's turn inside a Reaper; a backend that raises is an error result (its tree is judged)."""
        try:
            with Reaper():
                return self.agent.run(task, self.agent_budget())
        except KeyboardInterrupt:
            return Result("interrupted")
        except Exception as e:
            return Result("error", error=clip(f"the agent backend raised {type(e).__name__}: {e}", 500))

    def hypothesis(self, result: Result, root: Path) -> str:
        """The first line of hypothesis.txt in `root` (then removed, so it is never part of the candidate), or else
        of the agent's final message; printable, at most 200 characters."""
        path = root / HYPOTHESIS_FILE
        text = ""
        if path.is_file() and not path.is_symlink():
            text = path.read_text(encoding="utf-8", errors="replace")
        if path.is_symlink() or path.exists():
            path.unlink()
        line = next((ln.strip() for ln in (text or result.summary or "").splitlines() if ln.strip()), "")
        return clip(printable(line), 200) if line else "(none stated)"

    # ---------------------------------------------------------------- acting on a decision (repeatable)

    def act(self, feature: Feature, board: Board, state: dict) -> None:
        """Carry out a decided trial and record it: commit (keep) or save and reset (discard, crash). Repeatable
        after a crash: a commit already made (its sha in the state) is not made again; the board gets the
        trial once."""
        trial = Trial.model_validate(state["trial"])
        n, inc_sha = trial.n, state["incumbent"]
        root = Path(state.get("root") or self.repo)
        if trial.verdict == "keep":
            sha = state.get("commit")
            if not (sha and head_sha(self.repo) == sha):
                if root != self.repo:  # a worktree's candidate becomes the repository's working tree
                    checkout_tree(self.repo, state["tree"])
                evidence = [Evidence.model_validate(e) for e in state["evidence"]]
                done = commit_feature(
                    self.repo, feature, int(state["attempts"][0]), evidence, verified=Candidate(state["tree"]),
                    outputs=state["outputs"], subject=f"optimize({feature.id}): trial {n} kept: {trial.hypothesis}",
                    before_move=lambda sha, tree: self.write_state(feature, {**state, "commit": sha}))
                sha = done.sha
            trial.commit = sha
            opt = feature.optimize
            assert opt is not None
            if opt.holdout is not None:  # where its runs' outputs are: the repository, or its worktree
                trial.holdout, problem = self.holdout(feature, opt.seeds, f"trial-{n}",
                                                      root if root.is_dir() else self.repo)
                if problem:
                    trial.detail += f"; holdout not measured: {problem}"
        else:
            patch = optimize_dir(self.repo, feature.id) / f"discarded-{n}.patch"
            trial.ref = save_discarded(self.repo, feature.id, n, inc_sha, state["tree"],
                                       f"optimize({feature.id}): trial {n} {trial.verdict}: {trial.hypothesis}\n\n"
                                       f"{trial.detail}\n", patch)
            trial.patch = str(patch.relative_to(self.repo))
            discard_changes(self.repo)
        write_left_tree(self.repo, tree_fingerprint(self.repo))  # ralph's leftovers, not a dirty tree
        if not board.has(n):
            board.trials.append(trial)
            save_board(self.repo, board)
            self.log("optimize-trial", feature, trial)
        if state.get("rest"):  # the round's later trials, measured, wait for their decision
            self.write_state(feature, {"stage": "checks", "trials": state["rest"], "incumbent": inc_sha,
                                       "attempts": state["rest_attempts"]})
        else:
            self.clear_state(feature)

    def holdout(self, feature: Feature, seeds: list[int], name: str, root: Path) -> tuple[float | None, str | None]:
        try:
            return holdout_figure(self.project, feature, seeds, tree=root,
                                  baseline=guards.snapshot(root, protected_patterns(feature, self.project)),
                                  shared=ignored_dirs(root), log_dir=self.project.log_dir(f"{feature.id}-{name}"),
                                  reporter=self.view, labels=plan_labels(feature.phase, feature.id),
                                  protected=self.protected(feature))
        except Exception as e:  # the holdout is a report, never a verdict: what broke is recorded
            return None, clip(f"{type(e).__name__}: {e}", 300)

    def abandon(self, feature: Feature, ns: list[int], why: str, refunds: int | None = None) -> None:
        """Trials that were never decided: not counted (their ledger attempts given back, `refunds` of them), the
        tree back to the incumbent, on the record."""
        discard_changes(self.repo)
        for _ in range(len(ns) if refunds is None else refunds):
            self.project.ledger.refund_attempt(feature.id)
        clear_inflight(self.repo)
        self.clear_state(feature)
        self.project.progress.append(LogEntry(kind="interrupted", subject=feature.id, phase=feature.phase,
                                              fields={"trial": ", ".join(map(str, ns)), "during": why,
                                                      "trials": "not counted"}, commit=head_sha(self.repo)))

    def stop_jobs(self, feature: Feature) -> None:
        """Stop the Ray jobs a killed ralph's measurements left running (measure.jobs_dir names them): their trials
        are not counted, and run again."""
        marks = jobs_dir(self.repo, feature.id)
        left = sorted(p.name for p in marks.iterdir()) if marks.is_dir() else []
        if left:
            stopped = stop_jobs(self.project, left)
            self.view.say(f"{feature.id}: stopped {len(stopped)} Ray job(s) left running by a ralph that stopped")
            shutil.rmtree(marks)

    def resume(self, feature: Feature, board: Board) -> None:
        """Finish the books on a trial a killed ralph left: decided → carried out once; not decided → abandoned."""
        path = optimize_dir(self.repo, feature.id) / TRIAL_FILE
        if not path.is_file():
            return
        state = json.loads(path.read_text(encoding="utf-8"))
        open_repo(self.repo).git.worktree("prune")  # worktrees of a round whose folders are gone
        if state["stage"] == "decided":
            self.view.say(f"{feature.id}: finishing trial {state['trials'][0]}, decided before ralph stopped")
            self.act(feature, board, state)
            self.resume(feature, board)  # the rest of its round, if any, was not decided
        elif state["stage"] == "confirm":  # the baseline's tree was out for the confirmation: the incumbent comes back
            checkout_tree(self.repo, "HEAD")
            discard_changes(self.repo)
            self.clear_state(feature)
        else:  # run/recovery.py gave one attempt back (the agents' turn) and put the protected paths back
            given = 1 if state["stage"] == "agent" else 0
            self.abandon(feature, state["trials"], f"ralph stopped during the {state['stage']} step",
                         refunds=len(state["trials"]) - given)

    # ---------------------------------------------------------------- the end

    def finish(self, feature: Feature, board: Board, why: str) -> None:
        """Confirm the incumbent against the baseline on fresh seeds, tag it, and record the feature's verdict."""
        opt = feature.optimize
        assert opt is not None and board.baseline is not None
        best, base = board.incumbent, board.baseline
        assert best is not None
        self.view.say(f"{feature.id}: the search ended ({why}); confirming on seeds {opt.confirm_seeds}")
        n = len(board.candidates) + 1
        started = time.monotonic()
        if best.kind == "baseline":
            confirmed, detail, stats = False, "no candidate beat the baseline: nothing to confirm", None
            trial = Trial(n=n, kind="confirmation", verdict="discard", detail=detail, incumbent=0)
        else:
            winner = self.measure(feature, opt.confirm_seeds, "confirm-winner", holdout=False)
            if winner.crash is None:
                discard_changes(self.repo)
            against = self.measure_baseline_tree(feature, base.commit or "", opt.confirm_seeds)
            crash = winner.crash or against.crash
            if crash:
                confirmed, stats, detail = False, None, f"the confirmation could not be measured: {crash}"
                trial = Trial(n=n, kind="confirmation", verdict="crash", detail=detail, incumbent=0)
            else:
                decision = decide(winner.per_seed, against.per_seed, direction=opt.direction, alpha=opt.alpha)
                confirmed, stats = decision.keep, decision.stats
                detail = (f"trial {best.n} against the baseline on fresh seeds {opt.confirm_seeds}: "
                          f"{'confirmed' if confirmed else 'not confirmed'}: {decision.reason}")
                trial = Trial.measured(winner.per_seed, n=n, kind="confirmation", incumbent=0,
                                       verdict="keep" if confirmed else "discard", diff=decision.diff,
                                       p_value=decision.p_value, detail=detail, commit=best.commit,
                                       versus=against.per_seed, compute_hours=winner.compute_hours +
                                       against.compute_hours, gpu_hours=winner.gpu_hours + against.gpu_hours)
        trial.wall_s = time.monotonic() - started
        board.trials.append(trial)
        tag = tag_best(self.repo, feature.id, best.commit) if best.kind == "candidate" and best.commit else None
        gap = best.mean - best.holdout if best.mean is not None and best.holdout is not None else None
        board.ending = Ending(stopped=why, confirmed=confirmed, best_commit=best.commit, tag=tag,
                              baseline_holdout=base.holdout, winner_holdout=best.holdout, gap=gap)
        save_board(self.repo, board)
        self.log("optimize-confirmation", feature, trial)
        try:  # the plot is a view: a failure to draw it is said, never a verdict
            plot_board(board, optimize_dir(self.repo, feature.id) / "leaderboard.png")
        except Exception as e:
            self.view.say(f"{feature.id}: the leaderboard plot failed ({type(e).__name__}: {e})", style="yellow")
        evidence = [Evidence(check="optimize confirmation", kind="compare", verdict="pass" if confirmed else "fail",
                             detail=detail, duration_s=round(trial.wall_s, 3), comparison=stats,
                             figures={f"{opt.metric.key}.baseline": base.mean or 0.0,
                                      f"{opt.metric.key}.best": best.mean or 0.0})]
        fields = {"stopped": why, "trials": str(len(board.candidates)), "best": f"trial {best.n}"}
        record_verdict(self.project, feature, evidence, Occasion("optimize-end", fields),
                       commit=lambda: commit_feature(self.repo, feature, self.project.ledger.feature(feature.id).attempts,
                                                     evidence))
        if not confirmed:
            self.block(feature, f"the search ended ({why}) and {detail}")

    def measure_baseline_tree(self, feature: Feature, sha: str, seeds: list[int]) -> Measurement:
        """The baseline commit measured on `seeds`: its tree checked out in the working tree for the checks, then
        the incumbent put back (trial.json says so while it is out, so a killed ralph puts it back too)."""
        self.write_state(feature, {"stage": "confirm", "trials": []})
        checkout_tree(self.repo, sha)
        write_left_tree(self.repo, tree_fingerprint(self.repo))  # the baseline's tree is ralph's, should it stop now
        try:
            return self.measure(feature, seeds, "confirm-baseline", holdout=False)
        finally:
            checkout_tree(self.repo, "HEAD")
            discard_changes(self.repo)
            self.clear_state(feature)

    # ---------------------------------------------------------------- helpers

    def protected(self, feature: Feature) -> list[str]:
        return list(dict.fromkeys([*self.project.protected, *protected_patterns(feature, self.project)]))

    def measure(self, feature: Feature, seeds: list[int], name: str, *, holdout: bool,
                tree: Path | None = None) -> Measurement:
        """The feature's checks on the candidate at `tree` (default: the repository's working tree), shown live."""
        return measure(**self.measure_args(feature, seeds, name, holdout=holdout, tree=tree or self.repo,
                                           reporter=self.view))

    def measure_args(self, feature: Feature, seeds: list[int], name: str, *, holdout: bool, tree: Path,
                     reporter: Reporter | None, attempt: int = 0) -> dict[str, Any]:
        """measure.py's `measure` arguments for the candidate at `tree` (its Ray jobs named after `attempt`); a
        worktree's checks see its own ignored folders only (the repository's datasets are not linked in yet)."""
        patterns = protected_patterns(feature, self.project)
        return dict(project=self.project, feature=feature, seeds=seeds, tree=tree,
                    baseline=guards.snapshot(tree, patterns), shared=ignored_dirs(tree),
                    log_dir=self.project.log_dir(f"{feature.id}-{name}"), reporter=reporter,
                    labels=plan_labels(feature.phase, feature.id), holdout=holdout, protected=self.protected(feature),
                    attempt=attempt)

    def steer(self, feature: Feature, board: Board) -> str:
        """The steering text for the next trial; a change since the last trial is logged in progress.txt."""
        path = steer_path(self.repo, feature.id)
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        digest = sha256_file(path) if path.is_file() else None
        if digest != board.steer_sha256:
            board.steer_sha256 = digest
            save_board(self.repo, board)
            self.project.progress.append(LogEntry(kind="optimize-steer", subject=feature.id, phase=feature.phase,
                                                  fields={"steer": clip(printable(text), 2000) or "(removed)",
                                                          "file": str(path.relative_to(self.repo))},
                                                  commit=head_sha(self.repo)))
        return text

    def write_state(self, feature: Feature, state: dict) -> None:
        atomic_write_text(optimize_dir(self.repo, feature.id) / TRIAL_FILE, json.dumps(state) + "\n")

    def clear_state(self, feature: Feature) -> None:
        (optimize_dir(self.repo, feature.id) / TRIAL_FILE).unlink(missing_ok=True)

    def block(self, feature: Feature, reason: str) -> None:
        self.project.ledger.mark_blocked(feature.id, reason, checks=feature.verify)
        self.project.progress.append(LogEntry(kind="blocked", subject=feature.id, phase=feature.phase,
                                              fields={"reason": reason}, commit=head_sha(self.repo)))
        self.view.say(f"{feature.id} blocked: {reason}", style="bold red")

    def log(self, kind: str, feature: Feature, trial: Trial) -> None:
        """One progress.txt entry per trial: verdict, figures, hypothesis, where its code is."""
        fields = {"trial": str(trial.n), "verdict": trial.verdict}
        if trial.mean is not None:
            fields["metric"] = f"{trial.mean:.6g} ± {trial.std or 0:.2g} over seeds {trial.seeds}"
        if trial.diff is not None:
            fields["vs incumbent"] = f"{trial.diff:+.4g} (trial {trial.incumbent}), p {trial.p_value:.3g}" \
                if trial.p_value is not None else f"{trial.diff:+.4g}"
        for key, value in (("hypothesis", trial.hypothesis), ("detail", trial.detail), ("ref", trial.ref),
                           ("holdout", None if trial.holdout is None else f"{trial.holdout:.6g}")):
            if value:
                fields[key] = value
        self.project.progress.append(LogEntry(kind=kind, subject=feature.id, phase=feature.phase, fields=fields,
                                              tokens=trial.tokens or None, cost_usd=trial.cost_usd or None,
                                              duration_s=trial.wall_s, commit=head_sha(self.repo)))
