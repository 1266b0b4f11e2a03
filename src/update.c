/* update.c: one call's arithmetic over every variable (SPEC A1 steps 2-9),
 * planned once per call and run segment by segment in the fused kernels.
 *
 * Owns: deciding what this call does (accumulate or update, the global clip
 * norm, the EMA factor and overwrite), the per-variable transform, and the
 * counters it writes (iterations, the learning rate used).
 * Must never: run before every check of the call has passed (step.c), read
 * or write R objects other than the state (everything comes in the
 * records), or raise an error.
 */
#include "calls.h"
#include <math.h>

void update_all(rms_state *st, leaf_rec *L, double lr, double loss_scale_override) {
  const double *cfg = st->cfg, *off = st->offsets;
  const R_xlen_t nvar = st->nvar;
  const double k = cfg[CFG_ACCUM_STEPS];
  const double it = *st->iterations;
  const int is_update = k == 0 || fmod(it + 1, k) == 0;
  const double loss_scale = loss_scale_override > 0 ? loss_scale_override : cfg[CFG_LOSS_SCALE];
  const int use_ema = cfg[CFG_USE_EMA] != 0;
  double ema_m = 0;
  int overwrite = 0;
  if (use_ema) {
    double iterations = k != 0 ? floor(it / k) : it;
    double f = cfg[CFG_EMA_OVERWRITE];
    ema_m = iterations == 0 ? 0 : cfg[CFG_EMA_MOMENTUM];
    overwrite = f != 0 && fmod(iterations + 1, f) == 0;
  }
  if (!is_update) {
    for (R_xlen_t i = 0; i < nvar; i++) {
      if (L[i].g == NULL) continue;
      R_xlen_t o = (R_xlen_t) off[i], n = (R_xlen_t) off[i + 1] - o;
      grad_accumulate(loss_scale, n, L[i].g, st->accumulator + o);
    }
  } else {
    grad_transform t = {loss_scale, NULL, k, 0, 0, cfg[CFG_CLIPVALUE]};
    double global_denom = 0;
    if (cfg[CFG_GLOBAL_CLIPNORM] != 0) {
      double total = 0;
      for (R_xlen_t i = 0; i < nvar; i++) {
        if (L[i].g == NULL) continue;
        R_xlen_t o = (R_xlen_t) off[i], n = (R_xlen_t) off[i + 1] - o;
        t.acc = k != 0 ? st->accumulator + o : NULL;
        total += grad_sumsq(&t, n, L[i].g);
      }
      double norm = sqrt(total), c = cfg[CFG_GLOBAL_CLIPNORM];
      global_denom = norm > c ? norm : c;
    }
    rms_params p = {lr, cfg[CFG_RHO], cfg[CFG_MOMENTUM], cfg[CFG_EPSILON], 0,
                    cfg[CFG_CENTERED] != 0};
    for (R_xlen_t i = 0; i < nvar; i++) {
      if (L[i].g == NULL) continue;
      R_xlen_t o = (R_xlen_t) off[i], n = (R_xlen_t) off[i + 1] - o;
      double *acc = k != 0 ? st->accumulator + o : NULL;
      t.acc = acc;
      if (cfg[CFG_GLOBAL_CLIPNORM] != 0) {
        t.clip_norm = cfg[CFG_GLOBAL_CLIPNORM];
        t.clip_denom = global_denom;
      } else if (cfg[CFG_CLIPNORM] != 0) {
        /* Reads the accumulator, so before the update resets it. */
        double norm = sqrt(grad_sumsq(&t, n, L[i].g)), c = cfg[CFG_CLIPNORM];
        t.clip_norm = c;
        t.clip_denom = norm > c ? norm : c;
      }
      p.weight_decay = st->decay_mask[i] ? cfg[CFG_WEIGHT_DECAY] : 0;
      rms_arrays a = {L[i].vin, L[i].g, L[i].out, st->velocity + o,
                      st->momentum ? st->momentum + o : NULL,
                      st->average_gradient ? st->average_gradient + o : NULL,
                      acc, use_ema ? st->ema + o : NULL};
      L[i].finite = rms_step(&p, &t, ema_m, overwrite, n, &a);
      L[i].written = 1;
    }
  }

  /* Variables the update did not touch keep their values (copied on the
   * value path); with EMA their averages move too (SPEC A1 7-8). */
  for (R_xlen_t i = 0; i < nvar; i++) {
    if (L[i].written) continue;
    R_xlen_t o = (R_xlen_t) off[i], n = (R_xlen_t) off[i + 1] - o;
    if (use_ema) {
      L[i].finite = ema_step(ema_m, overwrite, n, L[i].vin, L[i].out, st->ema + o);
    } else {
      copy_doubles(n, L[i].vin, L[i].out);
      L[i].finite = 1; /* the values the step checked (or knew) finite */
    }
    /* Keras resets every accumulator on an update call, also those of
     * variables whose gradient was NULL in this call. */
    if (is_update && k != 0) fill_zero(n, st->accumulator + o);
  }
  *st->iterations = it + 1;
  *st->last_lr = lr;
}
