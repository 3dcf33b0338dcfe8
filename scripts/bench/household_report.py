"""The household sections of docs/GENERALISATION.md: open set through the real CLI
(scripts/bench/open_set.py), the same decisions in-process at every policy with room adaptation
and profile refresh (scripts/bench/household.py), and a scripted day through the daemon
(scripts/bench/household_day.py)."""

from __future__ import annotations


def calibration_markdown(meta: dict) -> list[str]:
    """What the bundle's decisions were fitted on: EER of sessions of n utterances per condition family
    of the calibration half, with and without room centring, and the same-speaker cosine (nothing for a
    bundle calibrated without a development set)."""
    report = meta.get("calibration_report") or {}
    if "by_utterances" not in report:
        return []
    families = report["trials"]["families"]
    lines = ["## Decisions by evidence (calibration half)", "",
             f"`score_calibration` is fitted on the calibration half's {report['trials']['people']} people: enrolled on "
             "their enrolment recordings, tried with sessions of n of their test recordings (the unit mean of the "
             "embeddings) in each condition family, everyone else of the half a stranger. Each false-accept rate "
             "of the table holds in the worst family. EER %:", "",
             "| recordings | scoring | pooled | " + " | ".join(families) + " |", "|---|---|---|" + "---|" * len(families)]
    for name, block in (("plain", report["by_utterances"]), ("room-centred", report.get("room") or {})):
        for n, row in block.items():
            lines.append(f"| {n} | {name} | {row['eer']:.2f} | " + " | ".join(f"{row['families'][f]:.2f}" for f in families)
                         + " |")
    same = report["same_speaker"]
    lines += ["", f"Sessions split below a same-speaker cosine of {same['threshold']:.3f}: "
              f"{100 * same['genuine_split']:.0f} % of one person's utterance pairs, "
              f"{100 * same['change_caught']:.0f} % of two people's ({same['n_genuine_pairs']} / {same['n_other_pairs']} "
              "pairs); an utterance accepted on its own as another enrolled person splits too.", ""]
    return lines


def open_set_markdown(open_set: dict) -> list[str]:
    lines = ["## Open set, through the real CLI", "",
             f"{open_set['enrolled']} people enrolled (`python -m device enroll`, their {open_set['per_person']} "
             f"enrolment recordings), {open_set['unknown']} never-enrolled people. An attempt is one test recording "
             "(`python -m device identify --json`) or a session of n of them (`identify --session --file F1 .. Fn "
             "--json`, disjoint groups of one person's recordings); unknown attempts are the others' recordings, "
             "grouped the same way.", "",
             "| condition | recordings | policy | threshold | named % | unsure % | rejected % | misidentified % | "
             "strangers accepted % | strangers unsure % | attempts (genuine / unknown) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in open_set["rows"]:
        lines.append(f"| {row['condition']} | {row['utterances']} | {row['policy']} | {row['threshold']} | "
                     f"{row['genuine_correct']} | {row['genuine_unsure']} | {row['genuine_rejected']} | "
                     f"{row['misidentified']} | {row['unknown_accepted']} | {row['unknown_unsure']} | "
                     f"{row['n_genuine']} / {row['n_unknown']} |")
    return lines + [""]


def household_markdown(household: dict) -> list[str]:
    lines = ["## Household decisions at every policy (in-process)", "",
             "`scripts/bench/household.py`: the same people and attempts as above, every decision through the device's "
             "`Recognizer.decide` (no process per attempt), with and without room adaptation (the device has heard "
             "4 of the enrolled people in that condition). `room` rows: device/room.py on.", "",
             "| condition | room | recordings | policy | named % | unsure % | rejected % | misidentified % | "
             "strangers accepted % | strangers unsure % |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in household["sessions"]:
        lines.append(f"| {r['condition']} | {'on' if r['room'] else 'off'} | {r['utterances']} | {r['policy']} | "
                     f"{r['genuine_correct']} | {r['genuine_unsure']} | {r['genuine_rejected']} | {r['misidentified']} | "
                     f"{r['unknown_accepted']} | {r['unknown_unsure']} |")
    lines += ["", "### Room adaptation: single-recording EER % (all people of the half)", "",
              "Centred on half the cohort mean and half the mean of what the device heard of k people in that "
              "condition; `none`: no centring.", "",
              "| condition | none | cohort only | heard 2 | heard 4 | heard 8 |", "|---|---|---|---|---|---|"]
    for r in household["room"]:
        lines.append(f"| {r['condition']} | {r['none']} | {r['cohort_only']} | {r['heard_2']} | {r['heard_4']} | "
                     f"{r['heard_8']} |")
    lines += ["", "### Profile refresh", "",
              "Each enrolled person's first half of test recordings may refresh their profile (device/refresh.py's rule: "
              "an accept at `far0.1`, bounded, drift-guarded); the second half and the strangers are judged at `far1`.",
              "", "| condition | refresh | refreshes made | named % | strangers accepted % |", "|---|---|---|---|---|"]
    for r in household["refresh"]:
        lines.append(f"| {r['condition']} | {'on' if r['refresh'] else 'off'} | {r['refreshes']} | "
                     f"{r['genuine_correct']} | {r['unknown_accepted']} |")
    return lines + [""]


def day_markdown(day: dict) -> list[str]:
    cast = day["cast"]
    lines = ["## A household day through the daemon", "",
             "`scripts/bench/household_day.py`: three enrolled people "
             f"(a = {cast['a']}, b = {cast['b']}, c = {cast['c']}), a television ({cast['tv']}) and a visitor "
             f"({cast['visitor']}) take {len(day['script'])} turns of 2-3 utterances with 3-20 s of silence between "
             "turns; `python -m device run --file DAY --json` listens (VAD, sessions, decisions) at the default policy.",
             ""]
    for condition, r in day["conditions"].items():
        lines += [f"### {condition} ({r['seconds']} s of audio, {r['decisions_made']} decisions)", "",
                  "| who | utterances | named correctly % | named wrongly % | accepted as someone % | unsure % | "
                  "missed % |", "|---|---|---|---|---|---|---|"]
        for role, row in r["roles"].items():
            lines.append(f"| {role} ({row['person']}) | {row['utterances']} | {row.get('named_correctly', '—')} | "
                         f"{row.get('named_wrongly', '—')} | {row['accepted_as_someone']} | {row['unsure']} | "
                         f"{row['missed']} |")
        median = r["median_speech_to_first_name_s"]
        lines += ["", f"Turns of an enrolled person named correctly: {r['turns_named']}; median speech heard before the "
                  f"first correct name: {'—' if median is None else f'{median:.1f} s'}.", ""]
    return lines
