"""sparse_syn's figure for `clbench plot --kind topology` (registered in this package's `__init__`)."""

from __future__ import annotations

from pathlib import Path

from clbench.plots import pyplot, save, slug


def plot_topology(frame, out_dir: Path, fmt: str) -> list[Path]:
    plt = pyplot()
    paths = []
    for _, run in frame.iterrows():
        maps, profiles = run["extras"].get("topology"), run["extras"].get("square_profile")
        if not maps:
            continue
        n = len(maps)
        fig, axes = plt.subplots(1, n + 1, figsize=(2.3 * n + 3.2, 2.8), layout="constrained",
                                 gridspec_kw={"width_ratios": [1] * n + [1.6]})
        top = max(max(map(max, m)) for m in maps) or 1
        for i, (ax, counts) in enumerate(zip(axes, maps)):
            image = ax.imshow(counts, cmap="magma", vmin=0, vmax=top)
            ax.set_title(f"after {i}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(image, ax=list(axes[:n]), label="connections per pixel", shrink=0.8)
        profile_ax = axes[-1]
        for i, profile in enumerate(profiles):
            sides = [2 * (k + 1) for k in range(len(profile))]
            profile_ax.plot(sides, profile, marker="o", ms=3, label=f"after {i}")
        profile_ax.set_xlabel("side of the centred square (pixels)")
        profile_ax.set_ylabel("mean connections per pixel")
        profile_ax.legend(fontsize=7, frameon=False)
        profile_ax.grid(alpha=0.3)
        fig.suptitle(f"{run['benchmark']} / {run['scenario']} / {run['strategy']} / seed {run['seed']}",
                     fontsize=10)
        name = "topology_" + slug(run["benchmark"], run["scenario"], run["strategy"], run["run_id"])
        paths.append(save(fig, out_dir, name, fmt))
    return paths
