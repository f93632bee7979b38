# The small three-stage job the whole-run tests share: wanda 0.5, nullu residual, alphaedit
# closed form on every encoder layer, Fashion-MNIST for calibration and validation.
# Source it, then: small_job MODEL OUTPUT CALIBRATION_SAMPLES VALIDATION_SAMPLES [GATE]
# prints the job file; GATE is the inside of `cascade.validation` (default
# `performance_threshold: 0.5`). Keys a test needs besides (threads, checkpoint_frequency,
# slurm) are printed after it by the test: `cascade` is the last top-level mapping, so a
# line indented by two spaces extends it and an unindented one adds a top-level key.
small_job() {
  cat <<YAML
model: $1
output: $2
backend: cpu
data: {calibration: fmnist:train, calibration_samples: $3, validation: fmnist:test, validation_samples: $4}
layers: {include: ['*encoder.layers.*']}
cascade:
  stages:
    - {name: dare, config: {method: wanda, target_sparsity: 0.5}}
    - {name: nullu, config: {method: residual, energy_threshold: 0.9, rank_reduction_ratio: 0.25}}
    - {name: alphaedit, config: {method: closed_form}}
  validation: {${5:-performance_threshold: 0.5}}
YAML
}
