"""The pictures: training curves, model comparisons and tuning studies (Matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

LOWER_IS_BETTER = ("rmse", "mae")


def _figure(figsize: tuple[float, float]):
    """A figure drawn by the Agg renderer, without pyplot: no global state to close, safe
    beside other threads, and 0.1-0.2 s less to import."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=110)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)


def _integer_epochs(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)


def mean_curve(histories: list[list[dict]], key: str) -> tuple[list, np.ndarray, np.ndarray]:
    """Epochs and the mean and standard deviation of ``key`` over histories, at each epoch
    that every history reached (past the first early stop the thin lines go on alone)."""
    by_epoch: dict[int, list[float]] = {}
    for history in histories:
        for record in history:
            if key in record:
                by_epoch.setdefault(record["epoch"], []).append(record[key])
    epochs = sorted(e for e, v in by_epoch.items() if len(v) == len(histories))
    values = [by_epoch[e] for e in epochs]
    return epochs, np.array([np.mean(v) for v in values]), np.array([np.std(v) for v in values])


def _draw(ax, histories: list[list[dict]], key: str, color: str, label: str) -> bool:
    """One split: its line. Several: each split thin, their mean bold with a ±1 std band."""
    if not any(key in r for h in histories for r in h):
        return False
    if len(histories) == 1:
        select = histories[0]
        ax.plot([r["epoch"] for r in select if key in r], [r[key] for r in select if key in r],
                color=color, label=label, lw=1.6)
        return True
    for history in histories:
        ax.plot([r["epoch"] for r in history if key in r],
                [r[key] for r in history if key in r], color=color, lw=0.7, alpha=0.35)
    epochs, mean, std = mean_curve(histories, key)
    ax.plot(epochs, mean, color=color, lw=2, label=f"{label} (mean of {len(histories)})")
    ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.15, lw=0)
    return True


def plot_curves(path: Path, results: list, task: str) -> None:
    """Training curves of a run's splits (the selection phase), chosen epochs dotted.

    Rating prediction: train and validation RMSE on one axis. Ranking: the training loss
    and the validation HR/NDCG on two panels, as they are on different scales. With
    several splits (folds) each is drawn thin in its metric's colour and the mean bold.
    """
    histories = [[r for r in res.history if r.get("phase", "select") == "select"]
                 for res in results]
    first = histories[0][0] if histories and histories[0] else {}
    ranking = [k for k in first if k.endswith(("hr@10", "ndcg@10")) and "_" in k]
    panels = [[("train_rmse", "train RMSE"), ("valid_rmse", "validation RMSE"),
               ("test_rmse", "test RMSE")]] if task == "explicit" else \
        [[("loss", "training loss")], [(k, k.replace("_", " ")) for k in ranking]]
    fig = _figure((5.2 * len(panels), 3.8))
    axes = fig.subplots(1, len(panels), squeeze=False)
    colors = ("tab:blue", "tab:orange", "tab:green")
    for ax, keys, ylabel in zip(axes[0], panels, ("RMSE" if task == "explicit" else "loss",
                                                   "validation metric")):
        for (key, label), color in zip(keys, colors):
            _draw(ax, histories, key, color, label)
        for res in results:
            ax.axvline(res.best_epoch, color="grey", lw=0.8, ls=":")
        ax.plot([], [], color="grey", lw=0.8, ls=":", label="chosen epoch")
        _integer_epochs(ax)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    splits = ", ".join(res.split.name for res in results)
    fig.suptitle(f"training curves ({splits})", fontsize=10)
    _save(fig, path)


def tight_limits(means, stds) -> tuple[float, float] | None:
    """Y limits hugging bars whose values are close (None: start at 0 as usual)."""
    low = float(np.min(np.asarray(means) - np.asarray(stds)))
    high = float(np.max(np.asarray(means) + np.asarray(stds)))
    span = max(high - low, 0.02 * abs(high), 1e-6)
    if low <= 0 or span > 0.5 * low:
        return None
    return low - 0.8 * span, high + 1.2 * span  # room above for the value labels


def plot_comparison(path: Path, table: dict, curves: dict, metrics: list[str],
                    curve_label: str = "validation metric", title: str = "") -> None:
    """One panel per metric (bars: mean over seeds, error bars: std, values printed, the
    best outlined; the axis cut when the values are close) and one with every model's
    mean validation curve.

    Args:
        table: ``{model: {metric: mean, f"{metric}_std": std}}``.
        curves: ``{model: [history, ...]}``, one history per seed.
        metrics: the metrics to draw, each on its own axis.
    """
    models = list(table)
    n = len(metrics) + 1
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig = _figure((4.4 * cols, 3.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    colors = {m: f"C{i}" for i, m in enumerate(models)}
    for ax, metric in zip(axes.flat, metrics):
        _bars(ax, models, metric, table, colors)
    ax = axes.flat[len(metrics)]
    key, shown = None, []
    for model in models:
        histories = curves.get(model, [])
        key = next((k for h in histories for r in h for k in r if k.startswith("valid_")),
                   None) if curve_label == "validation metric" else curve_label
        if key and _draw(ax, histories, key, colors[model], model):
            ax.set_ylabel(key.replace("_", " "))
            shown += [r[key] for h in histories for r in h if key in r]
    _integer_epochs(ax)
    heading = "validation curves (selection)"
    if shown and key:
        heading += _focus(ax, np.array(shown), key.split("_")[-1] in LOWER_IS_BETTER)
    ax.set_title(heading, fontsize=9)
    ax.legend(fontsize=7)
    for extra in axes.flat[n:]:
        extra.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _focus(ax, values: np.ndarray, lower: bool) -> str:
    """Keep the axis on where the curves settle: the first epochs of a slow starter
    would otherwise flatten every other line. Returns a note for the title."""
    bound = np.quantile(values, 0.9 if lower else 0.1)
    best = values.min() if lower else values.max()
    pad = 0.15 * abs(bound - best) + 1e-4
    low, high = (best - pad, bound + pad) if lower else (bound - pad, best + pad)
    if not np.any((values < low) | (values > high)):
        return ""
    ax.set_ylim(low, high)
    return " - early epochs off the axis"


def _bars(ax, models: list[str], metric: str, table: dict, colors: dict) -> None:
    means = [table[m].get(metric, np.nan) for m in models]
    stds = [table[m].get(f"{metric}_std", 0.0) for m in models]
    lower = metric.split()[-1] in LOWER_IS_BETTER
    best = int(np.nanargmin(means) if lower else np.nanargmax(means))
    bars = ax.bar(range(len(models)), means, yerr=stds, capsize=4,
                  color=[colors[m] for m in models], alpha=0.85)
    bars[best].set_edgecolor("black")
    bars[best].set_linewidth(1.8)
    for i, (mean, std) in enumerate(zip(means, stds)):
        ax.annotate(f"{mean:.4f}" + (f"\n±{std:.4f}" if std else ""), (i, mean + std),
                    ha="center", va="bottom", fontsize=7, xytext=(0, 2),
                    textcoords="offset points", fontweight="bold" if i == best else None)
    limits = tight_limits(means, stds)
    top = float(np.nanmax(np.asarray(means) + np.asarray(stds)))
    ax.set_ylim(*(limits or (0, 1.18 * top)))
    ax.set_xticks(range(len(models)), models, fontsize=8)
    cut = " - axis cut" if limits else ""
    ax.set_title(f"{metric.upper()} ({'lower' if lower else 'higher'} is better{cut})",
                 fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def plot_tuning_history(path: Path, study, monitor: str) -> None:
    """Each trial's validation value (pruned ones at their last report) and the best so
    far; values far worse than most are left off the axis and counted."""
    from optuna.trial import TrialState

    maximize = study.direction.name == "MAXIMIZE"
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED and t.intermediate_values]
    fig = _figure((7, 4))
    ax = fig.subplots()
    values = [t.value for t in done]
    ax.scatter([t.number for t in done], values, s=18, color="tab:blue", label="finished")
    last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
    ax.scatter([t.number for t in pruned], last, s=18, marker="x", color="grey",
               label="pruned (last report)")
    if done:
        order = sorted(done, key=lambda t: t.number)
        running = (np.maximum if maximize else np.minimum).accumulate([t.value for t in order])
        last_trial = max(t.number for t in study.trials)
        ax.step([t.number for t in order] + [last_trial], [*running, running[-1]],
                where="post", color="tab:red", label="best so far")
        everything = np.array(values + last)
        bound = np.quantile(everything, 0.1 if maximize else 0.9)
        best = running[-1]
        pad = 0.1 * abs(bound - best) + 1e-4
        low, high = (bound - pad, best + pad) if maximize else (best - pad, bound + pad)
        hidden = int(np.sum((everything < low) | (everything > high)))
        ax.set_ylim(low, high)
        ax.set_title(f"{len(study.trials)} trials; best {monitor} {best:.4f}"
                     + (f" ({hidden} worse trial{'s' * (hidden > 1)} off the axis)"
                        if hidden else ""), fontsize=9)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{monitor} ({'higher' if maximize else 'lower'} is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_importances(path: Path, study) -> dict | None:
    """Horizontal bars of Optuna's PED-ANOVA importances (which settings set the good
    trials apart; no extra packages); None (no file) with fewer than three finished
    trials or nothing to tell apart."""
    import optuna

    finished = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    if len(finished) < 3:
        return None
    try:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError):
        return None
    names = list(importances)[::-1]
    fig = _figure((6, 0.5 * len(names) + 1.4))
    ax = fig.subplots()
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    for i, name in enumerate(names):
        ax.annotate(f"{importances[name]:.2f}", (importances[name], i), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("importance for the validation value (PED-ANOVA, sums to 1)")
    ax.set_title(f"which settings mattered ({len(finished)} finished trials)", fontsize=9)
    _save(fig, path)
    return {k: round(float(v), 4) for k, v in importances.items()}
