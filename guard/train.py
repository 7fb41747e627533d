"""The GRPO trainer, one loop for every backbone and variant.

Per iteration: draw prompts (K-repeat), roll out the SDE storing x_k, mu_old and log p, score the
images, compute group-relative advantages, then take ``minibatches x inner_epochs`` optimizer
steps; each step sums the per-denoising-step losses of guard.loss over the trained steps. The first
minibatch of a rollout is exactly on-policy (ratio 1); the ratio statistics the paper plots come
from the later ones (column ``update`` > 0 in ``steps.jsonl``).

Outputs in the run folder: config.yaml, train.jsonl (per iteration), steps.jsonl (per iteration,
update and denoising step), eval.jsonl (proxy and gold on fixed seeds, EMA weights),
logratios.jsonl (per-sample raw and normalised log-ratios, advantages and b at chosen iterations), samples/iter_*.png,
checkpoints/ (atomic, resumable), final.json.

Several processes (``accelerate launch --num_processes N -m guard.train ...``) split each rollout
into contiguous blocks of groups and give the one-process update of the same global batch
(guard/distributed.py says how). Every process samples its block of the evaluation images; only
the main process scores them and writes the run folder. Two
things are per process: ``bias_reduction: batch`` averages b over the process's part of the
minibatch (as the public script does per GPU), and the per-step diagnostics in steps.jsonl and
logratios.jsonl are those of the main process's samples (``n`` counts them); the loss, the grad
norm and ``step_grad_norm`` are global.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm import tqdm

from eval.metrics import check_weights
from eval.prompts.draw import KRepeatSampler
from eval.services import ServiceError, running_services
from eval.tasks import Task
from guard.advantages import group_advantages
from guard.backbone import Backbone
from guard.checkpoint import (CheckpointError, load_checkpoint, resume_point, save_checkpoint, set_aside_damaged,
                              write_json_atomic)
from guard.distributed import Processes
from guard.ema import EMA
from guard.images import save_png
from guard.loss import grpo_group_loss
from guard.minibatch import accumulate, micro_batches, trained_step_indices
from guard.runlog import LOG_FILES, append_jsonl, config_changes, host_floats, set_aside, truncate_jsonl
from guard.ratio import get_variant, log_ratio, mean_bias, normalised_log_ratio
from guard.rollout import (Trajectory, backbone_device, evaluation_images, evaluation_names, initial_noise, sample_sde,
                           schedule_on, step_mean)
from guard.schedule import SCHEDULES, SDESchedule
from guard.stop import STOPPED_EXIT, Stopped, StopSignals
from guard.sde import gaussian_log_prob
from guard.stepnorm import GroupGradNorms, column_groups, set_column_values
from jobs.cli import init_torch, job_parser
from jobs.config import ConfigError, TrainConfig, load_config



class NonFiniteLossError(RuntimeError):
    """A NaN or inf loss: training stops and the last good checkpoint is kept."""


@dataclass
class Batch:
    """One rollout ready for training: this process's shard of it, and the whole batch's advantages."""

    cond: Any
    traj: Trajectory
    advantages: torch.Tensor
    """(B,) of the whole batch, on the CPU."""


def build_schedule(config: TrainConfig) -> SDESchedule:
    """The training SDE schedule named by ``config.sampler``."""
    return SCHEDULES[config.sampler](config.num_steps, config.shift, config.noise_level)


class Trainer:
    """Runs GRPO for one config into one output folder, resuming from its last checkpoint.

    ``processes``: the process group of a multi-process launch (default: this process alone).
    """

    def __init__(self, config: TrainConfig, backbone: Backbone, task: Task, out: Path,
                 restart_on_change: bool = False, processes: Processes | None = None) -> None:
        self.config, self.backbone, self.task, self.out = config, backbone, task, Path(out)
        self.restart_on_change = restart_on_change
        self.processes = processes or Processes()
        self.shard = self.processes.shard(config.prompts_per_iteration, config.group_size)
        self.device = backbone_device(backbone)
        self.variant = get_variant(config.variant)
        self.sched = schedule_on(build_schedule(config), self.device)
        self.params = [p for p in backbone.trainable_parameters() if p.requires_grad]
        self.step_norms = GroupGradNorms(self.params)
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, betas=config.adam_betas,  # fused: 3x faster on CPU
                                           weight_decay=config.weight_decay, fused=True)
        self.ema = EMA(self.params, config.ema_decay, config.ema_every)
        # fp16 autocast: losses scaled before backward, gradients unscaled before clipping (a no-op otherwise)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=getattr(backbone, "grad_scaling", False))
        self.generator = torch.Generator().manual_seed(config.seed)
        self.sampler = KRepeatSampler(task.prompts, config.prompts_per_iteration, config.group_size, config.seed)
        self.start = 0
        self.resumed: dict[str, Any] = {}
        """What the first train.jsonl row after a resume records: the checkpoint, the signal that stopped the run
        there (if one did), and the damaged checkpoints skipped."""

    # --- set-up and resume ---------------------------------------------------------------------
    def prepare(self) -> None:
        """Check the saved config, create the run folder, and resume from the latest checkpoint.

        Every process checks the config and loads the checkpoint; only the main one writes. The main
        process's weights are then copied to the others.
        """
        changed = config_changes(self.out, self.config.to_dict(), self.restart_on_change)
        self.processes.barrier()  # every process has read the saved config before it is replaced
        if self.processes.is_main:
            if changed:
                set_aside(self.out)
            (self.out / "samples").mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        self.processes.barrier()
        self.resume()
        self.processes.broadcast([*self.params, *self.ema.shadow])  # evaluation samples the EMA on every process
        if self.processes.is_main:
            for name in LOG_FILES:
                truncate_jsonl(self.out / name, self.start)

    def resume(self) -> None:
        """Load the newest intact checkpoint, past damaged ones (moved aside), and note it for train.jsonl."""
        root = self.out / "checkpoints"
        folder, damaged = resume_point(root)
        self.processes.barrier()  # every process has chosen its checkpoint before damaged ones are moved aside
        if damaged and self.processes.is_main:
            set_aside_damaged(root, damaged)
            print(f"checkpoint damaged: {'; '.join(damaged)} (kept as .damaged); resuming from "
                  f"{folder.name if folder else 'the start'}", flush=True)
        if folder is None:
            self.resumed = {"resumed_from": None, "damaged": damaged} if damaged else {}
            return
        state = load_checkpoint(folder, self.params, self.ema.shadow, self.optimizer, self.generator)
        self.ema.optimizer_steps, self.ema.updates = state["ema_optimizer_steps"], state["ema_updates"]
        if state.get("grad_scaler"):
            self.scaler.load_state_dict(state["grad_scaler"])
        self.start = state["iteration"]
        self.resumed = {"resumed_from": folder.name, **({"stopped_by": state["stopped_by"]} if "stopped_by" in state else {}),
                        **({"damaged": damaged} if damaged else {})}
        if self.processes.is_main:
            print(f"resuming {self.out} from {folder.name} at iteration {self.start}", flush=True)

    def save(self, iteration: int, stopped_by: str | None = None) -> None:
        """Checkpoint after ``iteration`` completed iterations (called on the main process only); ``stopped_by``: the
        signal that stopped the run here."""
        extra = {"ema_optimizer_steps": self.ema.optimizer_steps, "ema_updates": self.ema.updates,
                 "grad_scaler": self.scaler.state_dict(), **({"stopped_by": stopped_by} if stopped_by else {})}
        save_checkpoint(self.out / "checkpoints", iteration, self.params, self.ema.shadow, self.optimizer,
                        self.generator, extra, self.config.keep_checkpoints)

    # --- rollout -------------------------------------------------------------------------------
    def rollout(self, iteration: int) -> tuple[Batch, dict[str, Any]]:
        """Sample a group per prompt (this process's shard of the samples), score it, and compute advantages.

        The noise of the whole batch is drawn here, whatever the shard; the rewards of every process
        are gathered, so the advantages are those of the whole batch.
        """
        c = self.config
        t0 = time.perf_counter()
        draw = self.sampler.draw(iteration)
        prompts = draw.prompts[self.shard.rows]
        cond = self.backbone.encode(prompts)
        group = c.group_size if c.shared_group_noise else 1
        x = initial_noise(len(draw.prompts), self.backbone.latent_shape, self.generator, group)[self.shard.rows]
        traj = sample_sde(self.backbone, self.sched, cond, x.to(self.device), self.generator, c.decode_x0_hat,
                          self.shard)
        t1 = time.perf_counter()
        rewards = self.task.reward(self.backbone.decode(traj.final), prompts).float().cpu()
        rewards = self.processes.gather(rewards)
        t2 = time.perf_counter()
        adv = group_advantages(rewards, torch.tensor(draw.group), c.adv_std, c.adv_std_eps, c.adv_clip, c.adv_std_unbiased)
        row = {"reward_mean": float(rewards.mean()), "reward_std": float(rewards.std(unbiased=False)),
               "adv_abs_mean": float(adv.abs().mean()), "time_sample": t1 - t0, "time_reward": t2 - t1}
        return Batch(cond, traj, adv), row

    # --- update --------------------------------------------------------------------------------
    def train_on(self, batch: Batch, iteration: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """All optimizer steps on one rollout; returns iteration stats, per-step rows and histogram rows.

        Minibatches are drawn from the whole batch (the same on every process); each process trains
        on the samples of a minibatch it holds.
        """
        c = self.config
        n = len(batch.advantages)
        keep = torch.nonzero(batch.advantages != 0).flatten() if c.drop_zero_advantage else torch.arange(n)
        step_rows, hist_rows, losses, norms = [], [], [], []
        update = 0
        for _ in range(c.inner_epochs):
            order = keep[torch.randperm(len(keep), generator=self.generator)]
            for mb in torch.tensor_split(order, c.minibatches):
                if len(mb) == 0:
                    continue
                loss, rows, hist = self.minibatch_step(batch, mb, iteration, update)
                losses.append(loss)
                norms.append(self.optimizer_step())
                step_rows += rows
                hist_rows += hist
                update += 1
        losses = self.processes.sum_floats(losses)
        stats = {"kept": len(keep), "updates": update,
                 "loss": sum(losses) / max(len(losses), 1), "grad_norm": sum(norms) / max(len(norms), 1)}
        return stats, step_rows, hist_rows

    def minibatch_step(self, batch: Batch, mb: torch.Tensor, iteration: int, update: int) -> tuple[float, list, list]:
        """Accumulate the gradients of every trained step of one minibatch (``mb``: whole-batch indices).

        The trained steps are drawn for the whole minibatch; this process computes the loss of the
        samples it holds, each step's loss summed over them and divided by len(mb), so the
        processes' gradients add up to the gradient of the whole minibatch. One forward/backward
        covers ``steps_per_backward`` steps of a micro-batch. Each step's gradient norm, on the iterations
        that log it, comes from that backward (guard/stepnorm.py) where one process holds the whole
        micro-batch; otherwise from a backward per step (that step's own gradient, then added to the minibatch's).
        """
        c = self.config
        all_steps = trained_step_indices(len(mb), c, self.generator)
        mine, local = self.shard.take(mb)
        steps, adv = all_steps[mine], batch.advantages[mb[mine]].to(self.device)
        cond = self.backbone.select(batch.cond, local)
        n_steps = all_steps.shape[1]
        rows, hist, losses, trained = [], [], [], []
        one_step = (all_steps == all_steps[:1]).all(0)  # the columns of a single denoising step have a step's norm
        track = c.step_grad_norm_every > 0 and iteration % c.step_grad_norm_every == 0 and bool(one_step.any())
        parts = micro_batches(len(local), c.micro_batch)
        # each step's gradient norm: from the one backward of all steps where its rows are all here, else a backward per step
        ghost = (track and c.steps_per_backward != 1 and getattr(self.backbone, "rows_in_one_call", False)
                 and self.processes.world == 1 and len(parts) == 1)
        accumulated = [None] * len(self.params) if track and not ghost else None
        for js in micro_batches(n_steps, 1 if accumulated is not None else c.steps_per_backward):
            for part in parts:
                k = steps[part][:, js]
                part_cond = cond if len(parts) == 1 else self.backbone.select(cond, part)
                with self.step_norms.tracking(column_groups(len(js), len(part)), len(js)) if ghost else nullcontext() as sq:
                    loss, step_rows, step_hist = self.step_loss(batch.traj, local[part], k, part_cond, adv[part],
                                                                len(mb), iteration, update)
                    self.scaler.scale(loss / n_steps).backward()
                if ghost:
                    set_column_values(step_rows, k, sq.sqrt() / self.scaler.get_scale() * n_steps, "step_grad_norm")
                rows += step_rows
                hist += step_hist
                losses.append(loss.detach())
                trained.append(k)
            if accumulated is not None:
                step_grad = [p.grad for p in self.params]  # the gradient of this one step of every sample
                if one_step[js].all():  # ... and that of one denoising step
                    total = self.processes.summed([torch.zeros_like(p) if g is None else g
                                                   for p, g in zip(self.params, step_grad)])
                    if len(local):
                        norm = torch.stack(torch._foreach_norm(total)).norm() / self.scaler.get_scale()
                        rows[-1]["step_grad_norm"] = norm * n_steps
                accumulated = accumulate(accumulated, step_grad)
                held = [g for g in step_grad if g is not None]  # none where this process holds no sample
                if held:
                    torch._foreach_zero_(held)  # reused by the next step's backward
        if accumulated is not None:
            for p, g in zip(self.params, accumulated):
                p.grad = g
        losses = torch.stack(losses).tolist() if losses else []  # one copy from the device per minibatch
        failure = next((f"non-finite loss ({v}) at iteration {iteration}, update {update}, "
                        f"step {sorted(set(k.flatten().tolist()))}" for v, k in zip(losses, trained)
                        if not math.isfinite(v)), None)
        if self.processes.any(failure is not None):
            raise NonFiniteLossError(
                f"{failure or f'non-finite loss on another process at iteration {iteration}, update {update}'}; "
                f"the last good checkpoint in {self.out / 'checkpoints'} is kept. Check the reward for NaNs or "
                "lower lr; rerunning with the same config resumes from that checkpoint, a changed config needs "
                "a new output folder (or --on-config-change restart, which keeps this one as .replaced-<n>).")
        return sum(losses) / n_steps, host_floats(rows), hist

    def step_loss(self, traj: Trajectory, local: torch.Tensor, k: torch.Tensor, cond: Any, adv: torch.Tensor, n: int,
                  iteration: int, update: int) -> tuple[torch.Tensor, list, list]:
        """Steps ``k`` (P, S) of samples ``local`` (P,) of ``traj`` in one forward of P x S rows: the sum of
        their losses over the samples / ``n``, summed over the S columns, with a diagnostic row (and
        histogram row) per column and distinct step in it (diagnostics as 0-d tensors).

        Row r holds sample r mod P at its step of column r // P (step-major); a row's velocity does not
        depend on the others (nano: any batch of 4+ rows; diffusers: fixed ``forward_batch`` chunks).
        """
        c, sched = self.config, self.sched
        order = torch.arange(len(local)).repeat(k.shape[1])
        sample, k = local[order], k.T.reshape(-1)
        x, x_next = traj.latents[sample, k], traj.latents[sample, k + 1]
        mu_old, lp_old = traj.means[sample, k], traj.log_probs[sample, k]
        cond = cond if len(order) == len(local) else self.backbone.select(cond, order)
        adv = adv[order]
        mu = step_mean(self.backbone, sched, x, k, cond)
        mu_ref = step_mean(self.backbone, sched, x, k, cond, reference=True) if c.kl_beta > 0 else None
        lp = gaussian_log_prob(x_next, mu, sched.s[k])
        # one group per column and distinct step in it (column-major, steps ascending): a diagnostic row each
        key = torch.arange(len(k), device=k.device) // len(local) * len(sched.s) + k
        keys, groups = torch.unique(key, return_inverse=True)
        kl_scale = sched.sigma[k] if c.kl_denominator == "sigma" else sched.s[k]
        out = grpo_group_loss(self.variant, lp, lp_old, mu, mu_old, adv, sched.s[k], sched.h[k], kl_scale,
                              c.clip_eps, groups, len(keys), c.kl_beta, mu_ref, c.bias_reduction)
        counts = torch.bincount(groups, minlength=len(keys)).tolist()
        rows = [{"iteration": iteration, "update": update, "step": step, "n": count,
                 **{name: value[g] for name, value in out.diagnostics.items()}}
                for g, (step, count) in enumerate(zip((keys % len(sched.s)).tolist(), counts))]
        hist = []
        if iteration in c.histogram_iterations:
            for g, row in enumerate(rows):
                m = groups == g
                hist.append(self.histogram_row(iteration, update, row["step"], lp[m], lp_old[m], mu[m], mu_old[m], adv[m]))
        return out.loss_sum / n, rows, hist

    def histogram_row(self, iteration: int, update: int, step: int, lp, lp_old, mu, mu_old, adv) -> dict[str, Any]:
        """Per-sample raw and normalised log-ratios of one step, with what analysis/histograms.py predicts them from:
        the advantage, b per sample (whatever ``bias_reduction``), the step's s and the latent dims D."""
        s = self.sched.s[step]
        raw = log_ratio(lp, lp_old).detach()
        norm = normalised_log_ratio(raw, mean_bias(mu.detach(), mu_old, s, self.config.bias_reduction), s)
        b = mean_bias(mu.detach(), mu_old, s)
        return {"iteration": iteration, "update": update, "step": step, "s": float(s), "dims": mu[0].numel(),
                "raw": raw.tolist(), "normalised": norm.tolist(), "adv": adv.float().tolist(), "b": b.tolist()}

    def optimizer_step(self) -> float:
        """Sum the processes' gradients, clip, step, zero, update the EMA; returns the pre-clip grad norm."""
        self.processes.sum_grads(self.params)
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        self.scaler.step(self.optimizer)  # skipped (and the scale lowered) when fp16 gradients overflowed
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.step()
        return float(norm)

    # --- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, iteration: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """Proxy and gold on fixed seeds with the deterministic sampler and the EMA weights.

        Every process samples its block of the evaluation set; the main process gathers the images,
        scores them and returns the row and the per-image units (the others return None).
        """
        c, task = self.config, self.task
        prompts = evaluation_names(task.evaluation_prompts(), c.eval_per_prompt)
        with self.ema.swapped_in():
            _, images = evaluation_images(self.backbone, task.evaluation_prompts(), c.eval_per_prompt, c.eval_steps,
                                          c.shift, c.eval_seed, c.eval_batch, self.processes.block(len(prompts)))
        images = self.processes.gather_blocks(images, len(prompts))
        if not self.processes.is_main:
            return None
        summary, units = task.evaluation(images, prompts, task.eval_gold)
        save_png(images[:: max(1, c.eval_per_prompt // 8)], self.out / "samples" / f"iter_{iteration:06d}.png",
                 nrow=min(8, c.eval_per_prompt))
        return {"iteration": iteration, **summary}, [{"iteration": iteration, **u} for u in units]

    def write_evaluation(self, evaluation: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
        """Append an evaluation's row to eval.jsonl and its per-image units to eval_units.jsonl."""
        append_jsonl(self.out / "eval.jsonl", [evaluation[0]])
        append_jsonl(self.out / "eval_units.jsonl", evaluation[1])

    # --- loop ----------------------------------------------------------------------------------
    def run(self, stop: StopSignals | None = None) -> dict[str, Any]:
        """Train to ``config.iterations``; returns the final evaluation.

        When ``stop`` has received a signal (on any process), the iteration under way is finished and
        checkpointed, and :class:`Stopped` is raised: rerunning resumes there.
        """
        self.prepare()
        c, main = self.config, self.processes.is_main
        stop = stop or StopSignals()
        finish = self.start < c.iterations or not (self.out / "final.json").is_file()
        for i in tqdm(range(self.start, c.iterations), initial=self.start, total=c.iterations,
                      desc=f"{c.variant} seed {c.seed}", disable=None if main else True):
            if i % c.eval_every == 0:
                evaluation = self.evaluate(i)
                if main:
                    self.write_evaluation(evaluation)
            batch, row = self.rollout(i)
            t0 = time.perf_counter()
            stats, step_rows, hist_rows = self.train_on(batch, i)
            row = {"iteration": i, **row, **stats, "time_update": time.perf_counter() - t0}
            if main:
                self.log({**row, **self.resumed}, step_rows, hist_rows)
            self.resumed = {}
            stopping = self.processes.any(stop.received is not None)
            if ((i + 1) % c.checkpoint_every == 0 or stopping) and main:
                self.save(i + 1, stop.received if stopping else None)
            if stopping:
                self.processes.barrier()
                raise Stopped(i + 1, stop.received or "a signal on another process")
        final = self.evaluate(c.iterations) if finish else None
        if finish and main:
            for name in ("eval.jsonl", "eval_units.jsonl"):
                truncate_jsonl(self.out / name, c.iterations)
            self.write_evaluation(final)
            self.save(c.iterations)
            write_json_atomic(self.out / "final.json", final[0])
        self.processes.barrier()
        return json.loads((self.out / "final.json").read_text())

    def log(self, row: dict[str, Any], step_rows: list[dict[str, Any]], hist_rows: list[dict[str, Any]]) -> None:
        """Append one iteration's rows to train.jsonl, steps.jsonl and logratios.jsonl."""
        append_jsonl(self.out / "train.jsonl", [row])
        append_jsonl(self.out / "steps.jsonl", step_rows)
        if hist_rows:
            append_jsonl(self.out / "logratios.jsonl", hist_rows)


def lost_process(err: RuntimeError, timeout: int, out: Path) -> str:
    """The one-line error of a multi-process run whose collective failed: a process hung or gone (a lost node)."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (f"a collective with the other processes failed ({first}): a process or node died, or hung longer than "
            f"collective_timeout ({timeout} s); the checkpoints in {out / 'checkpoints'} are kept: resubmit the job "
            "(on any number of nodes) to resume from the last one")


def main(argv: list[str] | None = None) -> int:
    """``python -m guard.train --config CONFIG --out DIR [--variant V] [--seed N] [--iterations N]``."""
    parser = job_parser(__doc__, "YAML file with TrainConfig keys, or an experiment file (see --variant)")
    parser.add_argument("--out", required=True, help="run folder (resumed if it holds a checkpoint)")
    parser.add_argument("--variant", help="override the config's variant (a variant name of an experiment file)")
    parser.add_argument("--setting", help="backbone/task of an experiment file whose grid has several")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument("--iterations", type=int, help="override the config's iterations")
    parser.add_argument("--on-config-change", choices=["error", "restart"], default="error",
                        help="a run folder made with another config: refuse, or move it aside and start over")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in {"variant": args.variant, "seed": args.seed, "iterations": args.iterations}.items()
                 if v is not None}
    try:
        config = load_config(args.config, overrides, args.setting)
    except ConfigError as err:
        parser.exit(2, f"error: {err}\n")
    # before torch's threads are set (accelerate resets them on CPUs)
    processes = Processes.launched(timedelta(seconds=config.collective_timeout))
    init_torch(args.threads)
    from eval.tasks import build_task, task_metrics
    from guard.backbones import build_backbone

    # from here on, SIGTERM or SIGUSR1 stops the run at the next iteration boundary (guard/stop.py)
    with StopSignals() as stop:
        try:
            torch.manual_seed(config.seed)
            names = task_metrics(config.task, training=True)
            check_weights(names, config.metrics)  # before the backbone loads, not at the first reward
            # the first process of each machine starts the metric servers the reward and the evaluation need
            # (GenEval's detector) on ports chosen for this job, and tells the other processes there where they are
            logs = Path(args.out) if processes.is_main else Path(args.out) / f"servers-rank{processes.rank}"
            serving = running_services(config.metrics, names, logs) if processes.is_node_main else nullcontext()
            with serving as metrics:
                task = build_task(config.backbone["name"], config.task, processes.share_in_node(metrics))
                trainer = Trainer(config, build_backbone(config.backbone), task, Path(args.out),
                                  restart_on_change=args.on_config_change == "restart", processes=processes)
                final = trainer.run(stop)
        except Stopped as stopped:
            if processes.is_main:
                print(f"{stopped}: checkpoint ckpt-{stopped.iteration:06d} written; the same command resumes from it "
                      f"(exit {STOPPED_EXIT})", flush=True)
            return STOPPED_EXIT
        except (ConfigError, NonFiniteLossError, FileNotFoundError, ServiceError, CheckpointError) as err:
            parser.exit(2, f"error: {err}\n")
        except RuntimeError as err:
            if processes.world == 1:
                raise
            parser.exit(3, f"error: {lost_process(err, config.collective_timeout, Path(args.out))}\n")
    if processes.is_main:
        print(json.dumps(final))
    return 0 if all(math.isfinite(v) for v in final.values() if isinstance(v, float)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
