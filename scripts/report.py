"""Tables, JSON and charts of migration results (guestrun.RunResult),
shared by the demo, the benchmark and the soak."""

import dataclasses
import json
import statistics

COLUMNS = [
    ('scenario', 'scenario'), ('mode', 'mode'), ('total_ms', 'total ms'),
    ('downtime_ms', 'downtime ms'), ('cpu_ms', 'cpu ms'),
    ('mb_sent', 'MB sent'),
    ('skipped', 'skipped free/unbacked/zero'),
    ('hint_latency_ms', 'hint ms'),
    ('hint_turn_ms', 'turn ms'),
    ('limit_mb', 'limit MB'), ('check', 'data check'),
]


def dash(v):
    """A figure, or '-' when there is none."""
    return '-' if v is None else v


def table_row(r):
    free = r.free_pages_skipped
    lat = r.hint_latency_us
    turn = r.hint_turn_us
    return {
        'scenario': r.scenario, 'mode': r.mode,
        'total_ms': r.total_ms, 'downtime_ms': r.downtime_ms,
        'cpu_ms': dash(r.migration_cpu_ms),
        'mb_sent': r.mb_sent,
        'skipped': '%s/%s/%s' % (dash(free), dash(r.unbacked_skipped_pages),
                                 r.zero_pages),
        'hint_latency_ms': '-' if not lat else '%.1f' % (lat / 1000),
        'hint_turn_ms': '-' if turn is None else '%.1f' % (turn / 1000),
        'limit_mb': '-' if r.limit_mb is None else r.limit_mb,
        'check': r.check(),
    }


def text_table(head, rows):
    """@head and @rows as text, each column as wide as its widest cell."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    return '\n'.join('  '.join(str(c).ljust(w)
                               for c, w in zip(r, widths)).rstrip()
                     for r in [head, *rows])


def format_table(rows, columns=COLUMNS):
    cells = [table_row(r) for r in rows]
    return text_table([h for _, h in columns],
                      [[c[k] for k, _ in columns] for c in cells])


# The ballooned scenario's own table: what the migration thread read and
# skipped, against the same guest never ballooned.
BALLOONED_COLUMNS = [
    ('mode', 'mode'), ('kind', 'kernel'), ('balloon_mib', 'RAM MiB'),
    ('total_ms', 'total ms'), ('mb_sent', 'MB sent'), ('cpu_ms', 'cpu ms'),
    ('pages_scanned', 'pages scanned'),
    ('balloon_skipped', 'balloon skipped'),
    ('skipped', 'skipped free/unbacked/zero'),
    ('never', 'never ballooned MB, cpu ms'), ('ratio', 'x MB, x cpu'),
    ('check', 'data check'),
]


def ratio(a, b):
    return '-' if a is None or not b else '%.2f' % (a / b)


def never_ballooned(rows, ref_mode):
    """{(guest MiB, mode): run} for each ballooned row of @rows: the
    median of the never-ballooned runs in @rows of the same size and of
    mode @ref_mode(mode), 'unballooned' ones if any, else 'idle' ones."""
    groups = {(m.guest_mib, m.mode, m.scenario): m for m in median_rows(
        [r for r in rows if r.scenario in ('unballooned', 'idle') and
         not r.error])}
    refs = {}
    for r in rows:
        if r.scenario == 'ballooned':
            key = (r.guest_mib, ref_mode(r.mode))
            ref = groups.get(key + ('unballooned',)) or groups.get(
                key + ('idle',))
            if ref:
                refs[(r.guest_mib, r.mode)] = ref
    return refs


def ballooned_table(rows, references):
    """@rows (ballooned runs), each against its never-ballooned run in
    @references (never_ballooned())."""
    head = [h for _, h in BALLOONED_COLUMNS]
    body = []
    for r in rows:
        c = table_row(r)
        ref = references.get((r.guest_mib, r.mode))
        c.update({
            'kind': r.kind, 'balloon_mib': dash(r.balloon_mib),
            'pages_scanned': dash(r.pages_scanned),
            'balloon_skipped': dash(r.balloon_skipped_pages),
            'never': '-' if ref is None else '%.1f, %s' % (
                ref.mb_sent, '-' if ref.migration_cpu_ms is None else
                '%.0f' % ref.migration_cpu_ms),
            'ratio': '-' if ref is None else '%s, %s' % (
                ratio(r.mb_sent, ref.mb_sent),
                ratio(r.migration_cpu_ms, ref.migration_cpu_ms)),
        })
        body.append([c[k] for k, _ in BALLOONED_COLUMNS])
    return text_table(head, body)


def write_json(rows, path, meta):
    with open(path, 'w') as f:
        json.dump({'meta': meta, 'runs': [r.to_dict() for r in rows]}, f,
                  indent=2)


def median_rows(rows):
    """Group runs by (size, link, scenario, mode, sparse RAM or not);
    medians of the numbers."""
    groups = {}
    for r in rows:
        groups.setdefault((r.guest_mib, r.bandwidth_mib, r.scenario, r.mode,
                           bool(r.sparse_ram)), []).append(r)
    out = []
    for runs in groups.values():
        med = {}
        for k in ('total_ms', 'downtime_ms', 'mb_sent', 'zero_pages',
                  'free_pages_skipped', 'hint_latency_us', 'hint_turn_us',
                  'migration_cpu_ms', 'pages_scanned',
                  'balloon_skipped_pages', 'unbacked_skipped_pages',
                  'balloon_mib', 'src_rss_mib', 'src_peak_rss_mib'):
            vals = [getattr(r, k) for r in runs
                    if getattr(r, k) is not None]
            m = statistics.median(vals) if vals else None
            # An even count's median is a mean: as precise as the figures
            if m is not None:
                m = (int(round(m)) if all(isinstance(v, int) for v in vals)
                     else round(m, 1))
            med[k] = m
        out.append(dataclasses.replace(
            runs[0], **med, repetitions=len(runs),
            pages_wrong=max((r.pages_wrong or 0) for r in runs),
            guest_alive=all(r.guest_alive for r in runs),
            error=next((r.error for r in runs if r.error), None),
            kernel_complaints=sum((r.kernel_complaints for r in runs), [])))
    return out


def write_chart(rows, path, title):
    """Grouped bars of MB sent per scenario and mode, with each scenario's
    limit as a line."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(r.scenario for r in rows))
    modes = list(dict.fromkeys(r.mode for r in rows))
    width = 0.8 / max(1, len(modes))
    fig, ax = plt.subplots(figsize=(2 + 2.2 * len(scenarios), 4.5))
    for i, mode in enumerate(modes):
        xs, ys = [], []
        for j, sc in enumerate(scenarios):
            for r in rows:
                if r.scenario == sc and r.mode == mode:
                    xs.append(j + (i - (len(modes) - 1) / 2) * width)
                    ys.append(r.mb_sent)
        bars = ax.bar(xs, ys, width, label=mode)
        ax.bar_label(bars, fmt='%.0f', fontsize=7)
    for j, sc in enumerate(scenarios):
        limits = [r.limit_mb for r in rows
                  if r.scenario == sc and r.limit_mb]
        if limits:
            ax.hlines(min(limits), j - 0.45, j + 0.45, colors='black',
                      linestyles='dashed', label='limit' if j == 0 else None)
    ax.set_xticks(range(len(scenarios)))
    ax.set_xticklabels(scenarios)
    ax.set_ylabel('MB sent')
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
