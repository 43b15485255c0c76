#!/usr/bin/env bash
# One-command speed and accuracy benchmark: rerank (f32, bf16, int8) against the fastest CPU
# peers — OpenVINO (f32, its default precision: bf16 on AVX512-BF16/AMX cores, NNCF static
# int8), ONNX Runtime (fp32, dynamic int8) — and sentence-transformers (PyTorch fp32, bf16
# autocast), "1 query × 100 documents" of 64–256 tokens (mixed), for the
# ms-marco-MiniLM-L-6-v2 shape (the real ../shared/models/minilm-l6-sotu-ce), the
# bge-reranker-base shape and the ModernBERT-base reranker shape (random weights generated
# here; ModernBERT: 22 × 768, GeGLU, local window 128 / global every 3rd layer, mean pooling;
# rerank f32/bf16 against PyTorch only), and the Qwen3-Reranker-0.6B shape (random BF16
# weights generated here; 1 query × 100 pairs of 64–512 tokens before the model card's
# prompt, against PyTorch AutoModelForCausalLM fp32 and bf16 autocast on the same input ids,
# scripts/bench_reference_llm.py).
#
# Per model: `rerank bench` (speed) and `rerank score --json` (logits) for each precision,
# then scripts/bench_reference.py (every peer; see its docstring for how each is set up and
# batched), then scripts/bench_report.py: one table per model, engines as columns, with
# pairs/s and max |logit − PyTorch fp32| and Spearman to PyTorch fp32 of every engine, the
# CPU model and its AMX/AVX512-BF16/VNNI flags, and rerank ÷ OpenVINO ratios. The fp32 ONNX
# export and OpenVINO f32 must match PyTorch fp32 within 1e-4 before they are timed; a peer
# that cannot be installed or fails stops the run (non-zero exit), none is skipped.
#
#   scripts/bench.sh                      # everything but qwen3 (minilm + bge took 12 min 48 s on 2 Sapphire Rapids cores, venv made)
#   BENCH_MODELS=minilm scripts/bench.sh  # the real model only
#   BENCH_REPEAT=1 BENCH_MODELS=minilm scripts/bench.sh   # a check of the set-up, ~2 min
#   BENCH_MODELS=qwen3 scripts/bench.sh   # the LLM reranker: 0.6B parameters, long
#
# The first run also makes the venv (torch, transformers, sentence-transformers, onnx,
# onnxruntime, openvino, nncf: a few GB), the random models and the ONNX exports.
#
# Environment:
#   BENCH_PYTHON=/path/bin/python   interpreter whose site-packages already hold torch,
#                                   transformers and sentence-transformers: the private venv
#                                   is made from it and reuses them (e.g. /work/venv-ref);
#                                   otherwise they are pip-installed into the venv
#   BENCH_SHARED=../shared          the shared models and data (default: ../shared beside
#                                   the repository, as every checkout has it)
#   BENCH_REPEAT=5                  timed repeats per engine (median reported)
#   BENCH_THREADS=2                 threads of every engine
#   BENCH_MODELS="minilm bge modernbert"  which shapes (also: qwen3)
#   BENCH_QWEN3_PAIRS=100           pairs of the qwen3 shape
#   BENCH_QWEN3_REPEAT=1            timed repeats of the qwen3 shape (every engine)
#   BENCH_VARIANTS=...              reference variants of minilm and bge (default: all of
#                                   scripts/bench_reference.py: st_fp32,st_fp32_sorted,
#                                   torch_bf16,ort_fp32,ort_int8,ov_fp32,ov_default,ov_int8);
#                                   for modernbert BENCH_VARIANTS_MODERNBERT, default the
#                                   PyTorch ones only: the ONNX export of ModernBERT's
#                                   attention is not part of the comparison the issue asks for
#   BENCH_OV_HINT=THROUGHPUT        OpenVINO PERFORMANCE_HINT: THROUGHPUT (2 streams, 2 batches
#                                   in flight; the faster here) or LATENCY (1 stream, 2 threads
#                                   per batch, as rerank runs)
#   BENCH_RERANK=path/to/rerank     use this binary instead of building one (e.g. an older build)
#   BENCH_SKIP_REFERENCE=1          rerank only: its own summary per model, no table
#
# Everything is cached under target/bench/ (venv, pairs, models, ONNX exports and their int8
# quantization); the merged results go to target/bench/results.json and the table to stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/target/bench"
SHARED="${BENCH_SHARED:-$ROOT/../shared}"
if [[ ! -d "$SHARED/models" ]]; then
  printf '== %s has no models/: point BENCH_SHARED at the shared folder\n' "$SHARED" >&2
  exit 1
fi
SHARED="$(realpath "$SHARED")"
REPEAT="${BENCH_REPEAT:-5}"
THREADS="${BENCH_THREADS:-2}"
MODELS="${BENCH_MODELS:-minilm bge modernbert}"
VARIANTS="${BENCH_VARIANTS:-st_fp32,st_fp32_sorted,torch_bf16,ort_fp32,ort_int8,ov_fp32,ov_default,ov_int8}"
OV_HINT="${BENCH_OV_HINT:-THROUGHPUT}"
VARIANTS_MODERNBERT="${BENCH_VARIANTS_MODERNBERT:-st_fp32,st_fp32_sorted,torch_bf16}"
mkdir -p "$OUT/models"
export RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
log() { printf '== %s\n' "$*" >&2; }

if [[ -n "${BENCH_RERANK:-}" ]]; then
  RERANK="$(realpath "$BENCH_RERANK")"
else
  log "building rerank (release)"
  cargo build --release --locked -p rerank-cli >&2
  RERANK="$ROOT/target/release/rerank"
fi

# --- the private Python environment -------------------------------------------------------
VENV="$OUT/venv"
PY="$VENV/bin/python"
if [[ ! -f "$VENV/.ready" ]]; then
  log "creating $VENV"
  rm -rf "$VENV"
  if [[ -n "${BENCH_PYTHON:-}" ]]; then
    "$BENCH_PYTHON" -m venv "$VENV"
    # Reuse the given interpreter's packages (torch is large), below the venv's own.
    site="$("$BENCH_PYTHON" -c 'import site; print(site.getsitepackages()[0])')"
    own="$("$PY" -c 'import site; print(site.getsitepackages()[0])')"
    echo "$site" > "$own/zz_reuse_bench_python.pth"
  else
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip >&2
    # CPU wheels when that index is reachable, else the (larger) default PyPI wheel.
    "$PY" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu >&2 \
      || "$PY" -m pip install -q torch >&2
    "$PY" -m pip install -q "transformers>=5" "sentence-transformers>=6" >&2
  fi
  "$PY" -c 'import torch, transformers, sentence_transformers' >&2
  touch "$VENV/.ready"
fi
# The peers' runtimes, also into a venv made before they were part of the benchmark.
if ! "$PY" -c 'import onnx, onnxruntime, openvino, nncf' 2>/dev/null; then
  log "installing onnx, onnxruntime, openvino and nncf into $VENV"
  "$PY" -m pip install -q onnx onnxruntime openvino nncf >&2
  "$PY" -c 'import onnx, onnxruntime, openvino, nncf' >&2 \
    || { log "the peers' runtimes do not import: see above"; exit 1; }
fi

# --- inputs and models ---------------------------------------------------------------------
declare -A MODEL_DIR TOKENIZER
MODEL_DIR[minilm]="$SHARED/models/minilm-l6-sotu-ce"
MODEL_DIR[bge]="$OUT/models/bge-reranker-base-random"
MODEL_DIR[modernbert]="$OUT/models/modernbert-base-random"
MODEL_DIR[qwen3]="$OUT/models/qwen3-reranker-0.6b-random"
if [[ " $MODELS " == *" bge "* && ! -f "${MODEL_DIR[bge]}/model.safetensors" ]]; then
  log "generating the random-weight bge-reranker-base shape"
  "$PY" scripts/make_random_xlmr.py --out "${MODEL_DIR[bge]}" --tokenizer "$SHARED/models/xlm-roberta-tokenizer"
fi
if [[ " $MODELS " == *" modernbert "* && ! -f "${MODEL_DIR[modernbert]}/model.safetensors" ]]; then
  log "generating the random-weight ModernBERT-base reranker shape"
  "$PY" scripts/make_random_modernbert.py --out "${MODEL_DIR[modernbert]}" \
    --config "$SHARED/models/configs/ModernBERT-base-reranker.config.json" \
    --tokenizer "$SHARED/models/tiny-modernbert-ce"
fi
if [[ " $MODELS " == *" qwen3 "* && ! -f "${MODEL_DIR[qwen3]}/model.safetensors" ]]; then
  log "generating the random-weight Qwen3-Reranker-0.6B shape"
  "$PY" scripts/make_random_qwen3.py --out "${MODEL_DIR[qwen3]}" \
    --config "$SHARED/models/configs/Qwen3-Reranker-0.6B.config.json" \
    --tokenizer "$SHARED/models/tiny-qwen3-reranker"
fi
QWEN3_PAIRS="${BENCH_QWEN3_PAIRS:-100}"
for m in $MODELS; do
  n=100 max=256 pairs="$OUT/pairs-$m.jsonl"
  if [[ "$m" == qwen3 ]]; then n="$QWEN3_PAIRS" max=512 pairs="$OUT/pairs-$m-$QWEN3_PAIRS.jsonl"; fi
  if [[ ! -s "$pairs" ]]; then
    log "writing $pairs (1 query × $n passages, 64–$max tokens)"
    "$PY" scripts/make_bench_pairs.py --text examples/state_of_the_union.txt \
      --tokenizer "${MODEL_DIR[$m]}/tokenizer.json" -n "$n" --min-tokens 64 --max-tokens "$max" \
      --tolerance 4 --seed 0 --out "$pairs"
  fi
done

# --- the runs ------------------------------------------------------------------------------
runs=()
for m in $MODELS; do
  if [[ "$m" == qwen3 ]]; then
    # The LLM reranker: rerank bench (speed) and rerank score --json (logits and ids for the
    # accuracy figures) in f32 and bf16, then PyTorch on the very same input ids.
    pairs="$OUT/pairs-qwen3-$QWEN3_PAIRS.jsonl" rep="${BENCH_QWEN3_REPEAT:-1}"
    for prec in f32 bf16; do
      log "qwen3: rerank bench --precision $prec ($rep repeats, load: $(cut -d' ' -f1-3 /proc/loadavg))"
      "$RERANK" bench --reranker "${MODEL_DIR[qwen3]}" --pairs "$pairs" --repeat "$rep" \
        --precision "$prec" --json > "$OUT/rerank-$prec-qwen3.json"
      "$RERANK" score --reranker "${MODEL_DIR[qwen3]}" --pairs "$pairs" --precision "$prec" \
        --json > "$OUT/scores-$prec-qwen3.jsonl"
    done
    log "qwen3: PyTorch references ($rep repeats each, load: $(cut -d' ' -f1-3 /proc/loadavg); log: $OUT/reference-qwen3.log)"
    if ! "$PY" scripts/bench_reference_llm.py --model "${MODEL_DIR[qwen3]}" --pairs "$pairs" \
        --repeat "$rep" --threads "$THREADS" --check-ids "$OUT/scores-f32-qwen3.jsonl" \
        --compare "rerank=$OUT/scores-f32-qwen3.jsonl" \
        --compare "rerank_bf16=$OUT/scores-bf16-qwen3.jsonl" \
        > "$OUT/reference-qwen3.json" 2> "$OUT/reference-qwen3.log"; then
      tail -n 20 "$OUT/reference-qwen3.log" >&2
      exit 1
    fi
    runs+=("qwen3=$OUT/rerank-f32-qwen3.json,$OUT/reference-qwen3.json,$OUT/rerank-bf16-qwen3.json")
    continue
  fi
  if [[ -n "${BENCH_SKIP_REFERENCE:-}" ]]; then
    log "$m: rerank bench ($REPEAT repeats, load: $(cut -d' ' -f1-3 /proc/loadavg))"
    "$RERANK" bench --reranker "${MODEL_DIR[$m]}" --pairs "$OUT/pairs-$m.jsonl" --repeat "$REPEAT"
    continue
  fi
  # rerank in every precision it has for the shape: speed, then logits for the accuracy
  # figures (int8 covers BERT and XLM-R, the minilm and bge shapes).
  precisions="f32 bf16"
  [[ "$m" == minilm || "$m" == bge ]] && precisions="f32 bf16 int8"
  compare=()
  for prec in $precisions; do
    log "$m: rerank bench --precision $prec ($REPEAT repeats, load: $(cut -d' ' -f1-3 /proc/loadavg))"
    "$RERANK" bench --reranker "${MODEL_DIR[$m]}" --pairs "$OUT/pairs-$m.jsonl" \
      --repeat "$REPEAT" --precision "$prec" --json > "$OUT/rerank-$prec-$m.json"
    "$RERANK" score --reranker "${MODEL_DIR[$m]}" --pairs "$OUT/pairs-$m.jsonl" \
      --precision "$prec" --json > "$OUT/scores-$prec-$m.jsonl"
    name=rerank; [[ "$prec" != f32 ]] && name="rerank_$prec"
    compare+=(--compare "$name=$OUT/scores-$prec-$m.jsonl")
  done
  variants="$VARIANTS"
  [[ "$m" == modernbert ]] && variants="$VARIANTS_MODERNBERT"
  log "$m: references $variants ($REPEAT repeats each, load: $(cut -d' ' -f1-3 /proc/loadavg); log: $OUT/reference-$m.log)"
  if ! "$PY" scripts/bench_reference.py --model "${MODEL_DIR[$m]}" --pairs "$OUT/pairs-$m.jsonl" \
      --repeat "$REPEAT" --threads "$THREADS" --onnx "$OUT/models/$m.onnx" --variants "$variants" \
      --ov-hint "$OV_HINT" "${compare[@]}" \
      > "$OUT/reference-$m.json" 2> "$OUT/reference-$m.log"; then
    tail -n 20 "$OUT/reference-$m.log" >&2
    log "$m: scripts/bench_reference.py failed (full log: $OUT/reference-$m.log)"
    exit 1
  fi
  files="$OUT/rerank-f32-$m.json,$OUT/reference-$m.json,$OUT/rerank-bf16-$m.json"
  [[ " $precisions " == *" int8 "* ]] && files+=",$OUT/rerank-int8-$m.json"
  runs+=("$m=$files")
done
if [[ ${#runs[@]} -gt 0 ]]; then
  "$PY" scripts/bench_report.py --out "$OUT/results.json" "${runs[@]}"
  log "wrote $OUT/results.json (load now: $(cut -d' ' -f1-3 /proc/loadavg))"
fi
