#!/usr/bin/env bash
# Generate the demo clips in device/demo_clips/ (committed; run again only to change them).
# RHVoice voices of the development set's report half, people no model trains on or is selected
# and calibrated with: alan (English, male), lyubov (English, female) and mikhail (Russian, male)
# are the enrolled speakers, victoria (Russian, female) is the unknown one. Each voice reads
# sentences in its own script. Each clip is one sentence, 16 kHz mono 16-bit FLAC: enroll-N for
# enrollment, test-N for the demo; `sox -R` seeds the dither, so a rerun writes the same files.
set -euo pipefail
cd "$(dirname "$0")/.."
out=device/demo_clips
command -v RHVoice-test >/dev/null || { echo "make_demo_clips: RHVoice-test missing; run scripts/setup_apt.sh" >&2; exit 1; }
declare -A script=([alan]=latin [lyubov]=latin [mikhail]=cyrillic [victoria]=cyrillic)
enrolled=(alan lyubov mikhail)
unknown=victoria
enroll_latin=(
  "The quick brown fox jumps over the lazy dog near the river bank."
  "Please remember to water the plants in the kitchen every morning."
  "Our train leaves the station at a quarter past seven tomorrow evening."
  "She bought fresh bread, two apples and a bottle of milk at the market."
  "A gentle breeze was blowing through the open window all afternoon."
)
tests_latin=(
  "Could you turn on the lights in the living room, please?"
  "I would like to hear the weather forecast for the weekend."
)
enroll_cyrillic=(
  "Быстрая рыжая лиса прыгает через ленивую собаку на берегу реки."
  "Пожалуйста, не забывай поливать цветы на кухне каждое утро."
  "Наш поезд отправляется с вокзала завтра вечером в четверть восьмого."
  "На рынке она купила свежий хлеб, два яблока и бутылку молока."
  "Весь день через открытое окно в комнату дул лёгкий ветерок."
)
tests_cyrillic=(
  "Пожалуйста, включи свет в гостиной и задёрни шторы на окнах."
  "Расскажи, какая погода будет в субботу и воскресенье."
)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
say() {  # voice text target
  echo "$2" | RHVoice-test -p "$1" -o "$tmp/raw.wav"
  sox -R -q "$tmp/raw.wav" -r 16000 -c 1 -b 16 "$3" silence 1 0.05 0.1% reverse silence 1 0.05 0.1% reverse pad 0.2 0.2
}
for voice in "${enrolled[@]}"; do
  declare -n sentences="enroll_${script[$voice]}"
  for i in "${!sentences[@]}"; do say "$voice" "${sentences[$i]}" "$out/$voice-enroll-$((i + 1)).flac"; done
done
for voice in "${enrolled[@]}" "$unknown"; do
  declare -n sentences="tests_${script[$voice]}"
  for i in "${!sentences[@]}"; do say "$voice" "${sentences[$i]}" "$out/$voice-test-$((i + 1)).flac"; done
done
echo "make_demo_clips: $(ls "$out" | wc -l) clips, $(du -sh "$out" | cut -f1) in $out"
