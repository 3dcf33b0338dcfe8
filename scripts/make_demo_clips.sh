#!/usr/bin/env bash
# Generate the demo clips in device/demo_clips/ (committed; run again only to change them).
# RHVoice English voices: alan, bdl and slt are the enrolled speakers, clb is the unknown one.
# Each clip is one sentence, 16 kHz mono 16-bit FLAC: enroll-N for enrollment, test-N for the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
out=device/demo_clips
command -v RHVoice-test >/dev/null || { echo "make_demo_clips: RHVoice-test missing; run scripts/setup_apt.sh" >&2; exit 1; }
enroll=(
  "The quick brown fox jumps over the lazy dog near the river bank."
  "Please remember to water the plants in the kitchen every morning."
  "Our train leaves the station at a quarter past seven tomorrow evening."
  "She bought fresh bread, two apples and a bottle of milk at the market."
  "A gentle breeze was blowing through the open window all afternoon."
)
tests=(
  "Could you turn on the lights in the living room, please?"
  "I would like to hear the weather forecast for the weekend."
)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
say() {  # voice text target
  echo "$2" | RHVoice-test -p "$1" -o "$tmp/raw.wav"
  sox -q "$tmp/raw.wav" -r 16000 -c 1 -b 16 "$3" silence 1 0.05 0.1% reverse silence 1 0.05 0.1% reverse pad 0.2 0.2
}
for voice in alan bdl slt; do
  for i in "${!enroll[@]}"; do say "$voice" "${enroll[$i]}" "$out/$voice-enroll-$((i + 1)).flac"; done
done
for voice in alan bdl slt clb; do
  for i in "${!tests[@]}"; do say "$voice" "${tests[$i]}" "$out/$voice-test-$((i + 1)).flac"; done
done
echo "make_demo_clips: $(ls "$out" | wc -l) clips, $(du -sh "$out" | cut -f1) in $out"
