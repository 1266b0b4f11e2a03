/* kernels_body.h: the loops of kernels.c, written once over a tiny vector
 * vocabulary and included once per instruction set (scalar, SSE2, AVX2).
 *
 * Owns: the element-wise arithmetic of SPEC A1 steps 2-8 on a range [b, e)
 * of one variable segment, and the deterministic sum of squares.
 * Must never: call the R API, allocate, or change the order of any floating
 * point operation. Every vector operation below is the IEEE operation the
 * scalar C expression performs (add, sub, mul, div and sqrt are correctly
 * rounded in SSE2/AVX, so a lane computes exactly what the scalar loop
 * computes); there are no fused multiply-adds (no "fma" target), no
 * reciprocals and no reassociation.
 *
 * The including file defines, before each inclusion:
 *   VT         the vector type (double for the scalar instance)
 *   VW         lanes per vector (1, 2 or 4)
 *   SUF(x)     x with the instruction-set suffix
 *   KATTR      function attributes (the target attribute for AVX2)
 *   VLD(p) VST(p, x) VSET1(x) VADD VSUB VMUL VDIV VSQRT
 *   VMAXLO(lo, x)  (lo > x ? lo : x), lanewise; NaN in x gives x
 *   VMINHI(hi, x)  (hi < x ? hi : x), lanewise; NaN in x gives x
 * Division by a power of two is done as multiplication by its reciprocal
 * when that reciprocal is exact (ls_inv, k_inv != 0, see kernels.c): x / 2^k
 * and x * 2^-k are the correctly rounded value of the same real number, so
 * the bits are the same; any other divisor is divided by.
 * The scalar instance (VW == 1) comes first: the vector instances finish
 * their ranges' tails with it, so tails compute the very same expressions.
 */

/* Report (kernel_note_nonfinite(), kernels.c) when a lane of FIN, the sum
 * of v - v over the values a range wrote, is NaN: one of them is not finite.
 * Expands with the VW and VST of the instance being compiled. */
#ifndef KNOTE_IF_NONFINITE
#define KNOTE_IF_NONFINITE
#define note_if_nonfinite(j, FIN)                                            \
  do {                                                                       \
    double lanes_[VW];                                                       \
    int bad_ = 0;                                                            \
    VST(lanes_, FIN);                                                        \
    for (int q_ = 0; q_ < VW; q_++) bad_ |= lanes_[q_] != lanes_[q_];        \
    if (bad_) kernel_note_nonfinite(j);                                      \
  } while (0)
#endif

/* The gradient the update uses at element i (SPEC A1 2-4): raw g divided by
 * the loss scale, plus the accumulator divided by k (the accumulator is reset
 * to 0 once read), times clipnorm over max(norm, clipnorm), clamped. */
#define KGRAD(G, i)                                                          \
  do {                                                                       \
    G = VLD(g + (i));                                                        \
    if (tr) {                                                                \
      if (has_ls) G = ls_exact ? VMUL(G, LSINV) : VDIV(G, LS);              \
      if (acc != NULL) {                                                     \
        G = VADD(G, VLD(acc + (i)));                                         \
        G = k_exact ? VMUL(G, KINV) : VDIV(G, K);                            \
        VST(acc + (i), ZERO);                                                \
      }                                                                      \
      if (has_cn) G = VDIV(VMUL(G, CN), CD);                                 \
      if (has_cv) G = VMINHI(HI, VMAXLO(LO, G));                             \
    }                                                                        \
  } while (0)

/* One element group of the fused update. The flags are compile-time
 * constants in each instantiation below, so every branch on them vanishes. */
static KATTR inline __attribute__((always_inline))
void SUF(rms_body)(const kjob *j, R_xlen_t b, R_xlen_t e, const int centered,
                   const int mom, const int decay, const int tr, const int ema) {
  const VT LR = VSET1(j->lr), RHO = VSET1(j->rho), OMR = VSET1(j->one_minus_rho);
  const VT EPS = VSET1(j->eps), BETA = VSET1(j->beta), WD = VSET1(j->wd);
  const VT LS = VSET1(j->ls), K = VSET1(j->k), CN = VSET1(j->cn), CD = VSET1(j->cd);
  const VT LO = VSET1(-j->cv), HI = VSET1(j->cv), ZERO = VSET1(0.0);
  const VT EM = VSET1(j->em), OEM = VSET1(j->one_minus_em);
  const VT LSINV = VSET1(j->ls_inv), KINV = VSET1(j->k_inv);
  const int ls_exact = j->ls_inv != 0, k_exact = j->k_inv != 0;
  /* Locals, not j->...: vector stores may alias anything, so fields of *j
   * would be reloaded on every iteration. */
  const double *g = j->g, *v_in = j->v_in;
  double *v_out = j->v_out, *ms = j->ms, *mg = j->mg, *mo = j->mom, *acc = j->acc, *avg = j->avg;
  const int has_ls = j->has_ls, has_cn = j->has_cn, has_cv = j->has_cv, overwrite = j->overwrite;
  /* FIN += v - v for every value written: 0 while they are finite, NaN for
   * good once one is not (Inf - Inf and NaN - NaN are NaN). Two cheap
   * operations on values already in registers; this tells the step whether
   * its results may skip the next step's scan (step.c). */
  VT FIN = ZERO;
  R_xlen_t i = b;
  for (; i + VW <= e; i += VW) {
    VT G;
    KGRAD(G, i);
    /* ms <- rho * ms + (1 - rho) * g^2 */
    VT S = VADD(VMUL(RHO, VLD(ms + i)), VMUL(OMR, VMUL(G, G)));
    VST(ms + i, S);
    VT DEN;
    if (centered) {
      /* mg <- rho * mg + (1 - rho) * g;  den <- ms - mg^2 + epsilon */
      VT A = VADD(VMUL(RHO, VLD(mg + i)), VMUL(OMR, G));
      VST(mg + i, A);
      DEN = VADD(VSUB(S, VMUL(A, A)), EPS);
    } else {
      DEN = VADD(S, EPS);
    }
    /* inc <- lr * g / sqrt(den) */
    VT INC = VDIV(VMUL(LR, G), VSQRT(DEN));
    VT V = VLD(v_in + i);
    /* v <- v - v * weight_decay * lr */
    if (decay) V = VSUB(V, VMUL(VMUL(V, WD), LR));
    if (mom) {
      /* mom <- momentum * mom + inc;  v <- v - mom */
      VT M = VADD(VMUL(BETA, VLD(mo + i)), INC);
      VST(mo + i, M);
      V = VSUB(V, M);
    } else {
      V = VSUB(V, INC);
    }
    if (ema) {
      /* avg <- m * avg + (1 - m) * v;  v <- avg on overwrite calls */
      VT AV = VADD(VMUL(EM, VLD(avg + i)), VMUL(OEM, V));
      VST(avg + i, AV);
      if (overwrite) V = AV;
    }
    VST(v_out + i, V);
    FIN = VADD(FIN, VSUB(V, V));
  }
  note_if_nonfinite(j, FIN);
#if VW > 1
  if (i < e) rms_range_scalar(j, i, e);
#endif
}

#define KCASE(c, m, d, t, a)                                                 \
  case ((c) | (m) << 1 | (d) << 2 | (t) << 3 | (a) << 4):                    \
    SUF(rms_body)(j, b, e, c, m, d, t, a);                                   \
    break;
#define KCASE2(c, m, d, t) KCASE(c, m, d, t, 0) KCASE(c, m, d, t, 1)
#define KCASE4(c, m, d) KCASE2(c, m, d, 0) KCASE2(c, m, d, 1)
#define KCASE8(c, m) KCASE4(c, m, 0) KCASE4(c, m, 1)

static KATTR void SUF(rms_range)(const kjob *j, R_xlen_t b, R_xlen_t e) {
  switch (j->variant) {
    KCASE8(0, 0) KCASE8(1, 0) KCASE8(0, 1) KCASE8(1, 1)
  }
}

#undef KCASE
#undef KCASE2
#undef KCASE4
#undef KCASE8
#undef KGRAD

/* The pre-clip gradient of SPEC A1 2-3 (g / loss_scale, then (g + acc) / k),
 * for the norms; the accumulator is only read here. */
#define KPRE(X, i)                                                           \
  do {                                                                       \
    X = VLD(j->g + (i));                                                     \
    if (j->has_ls) X = j->ls_inv != 0 ? VMUL(X, LSINV) : VDIV(X, LS);        \
    if (j->acc != NULL) {                                                    \
      X = VADD(X, VLD(j->acc + (i)));                                        \
      X = j->k_inv != 0 ? VMUL(X, KINV) : VDIV(X, K);                        \
    }                                                                        \
  } while (0)

/* Sum of squares over [b, e) in a fixed order that no instruction set or
 * thread count changes: element b + q goes to lane q % 8, each lane adds in
 * index order, and the lanes are combined as ((0+1)+(2+3))+((4+5)+(6+7)). */
static KATTR double SUF(sumsq_range)(const kjob *j, R_xlen_t b, R_xlen_t e) {
  const VT LS = VSET1(j->ls), K = VSET1(j->k), LSINV = VSET1(j->ls_inv), KINV = VSET1(j->k_inv);
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  R_xlen_t i = b;
#if VW == 1
  (void) LS;
  (void) K;
  (void) LSINV;
  (void) KINV;
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0, x;
  for (; i + 8 <= e; i += 8) {
    KPRE(x, i);     s0 += x * x;
    KPRE(x, i + 1); s1 += x * x;
    KPRE(x, i + 2); s2 += x * x;
    KPRE(x, i + 3); s3 += x * x;
    KPRE(x, i + 4); s4 += x * x;
    KPRE(x, i + 5); s5 += x * x;
    KPRE(x, i + 6); s6 += x * x;
    KPRE(x, i + 7); s7 += x * x;
  }
  lane[0] = s0, lane[1] = s1, lane[2] = s2, lane[3] = s3;
  lane[4] = s4, lane[5] = s5, lane[6] = s6, lane[7] = s7;
#else
  VT S[8 / VW], X;
  for (int q = 0; q < 8 / VW; q++) S[q] = VSET1(0.0);
  for (; i + 8 <= e; i += 8) {
    for (int q = 0; q < 8 / VW; q++) {
      KPRE(X, i + q * VW);
      S[q] = VADD(S[q], VMUL(X, X));
    }
  }
  for (int q = 0; q < 8 / VW; q++) VST(lane + q * VW, S[q]);
#endif
  for (; i < e; i++) {
    double y = j->g[i];
    if (j->has_ls) y = j->ls_inv != 0 ? y * j->ls_inv : y / j->ls;
    if (j->acc != NULL) y = j->k_inv != 0 ? (y + j->acc[i]) * j->k_inv : (y + j->acc[i]) / j->k;
    lane[(i - b) & 7] += y * y;
  }
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) +
         ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

#undef KPRE

/* acc <- acc + g / loss_scale (or + g): SPEC A1 2-3 on accumulation calls. */
static KATTR void SUF(accumulate_range)(const kjob *j, R_xlen_t b, R_xlen_t e) {
  const VT LS = VSET1(j->ls), LSINV = VSET1(j->ls_inv);
  R_xlen_t i = b;
  if (j->has_ls && j->ls_inv != 0) {
    for (; i + VW <= e; i += VW)
      VST(j->acc + i, VADD(VLD(j->acc + i), VMUL(VLD(j->g + i), LSINV)));
  } else if (j->has_ls) {
    for (; i + VW <= e; i += VW)
      VST(j->acc + i, VADD(VLD(j->acc + i), VDIV(VLD(j->g + i), LS)));
  } else {
    for (; i + VW <= e; i += VW) VST(j->acc + i, VADD(VLD(j->acc + i), VLD(j->g + i)));
  }
#if VW > 1
  if (i < e) accumulate_range_scalar(j, i, e);
#endif
}

/* For variables the update did not touch: avg <- m * avg + (1 - m) * v, and
 * the result is v (copied from v_in to v_out), or avg on overwrite calls
 * (SPEC A1 7-8). */
static KATTR void SUF(ema_range)(const kjob *j, R_xlen_t b, R_xlen_t e) {
  const VT EM = VSET1(j->em), OEM = VSET1(j->one_minus_em);
  VT FIN = VSET1(0.0); /* as in rms_body, over the values the result holds */
  R_xlen_t i = b;
  for (; i + VW <= e; i += VW) {
    VT V = VLD(j->v_in + i);
    VT AV = VADD(VMUL(EM, VLD(j->avg + i)), VMUL(OEM, V));
    VST(j->avg + i, AV);
    if (j->overwrite) V = AV;
    if (j->overwrite || j->v_out != j->v_in) VST(j->v_out + i, V);
    FIN = VADD(FIN, VSUB(V, V));
  }
  note_if_nonfinite(j, FIN);
#if VW > 1
  if (i < e) ema_range_scalar(j, i, e);
#endif
}

/* First index in [b, e) whose value is not finite (Inf, -Inf, NaN), or -1.
 * x * 0 is 0 for a finite x and NaN otherwise; blocks of 1024 are screened
 * with vector compares and only a flagged block is searched element-wise. */
static KATTR R_xlen_t SUF(nonfinite_range)(const double *x, R_xlen_t b, R_xlen_t e) {
  const VT Z = VSET1(0.0);
  for (R_xlen_t start = b; start < e; start += 1024) {
    R_xlen_t end = start + 1024 < e ? start + 1024 : e;
    R_xlen_t i = start;
    int bad = 0;
#if VW == 1
    (void) Z;
    double acc = 0;
    for (; i < end; i++) acc += x[i] * 0;
    bad = acc != 0 || acc != acc;
#else
    VT A0 = Z, A1 = Z, A2 = Z, A3 = Z;
    for (; i + 4 * VW <= end; i += 4 * VW) {
      /* One stream read alone waits on memory (one core keeps too few
       * misses in flight): ask for the lines SCAN_AHEAD doubles on. */
      for (int q = 0; q < 4 * VW; q += 8) VPREFETCH(x + i + SCAN_AHEAD + q);
      A0 = VORUNORD(A0, VMUL(VLD(x + i), Z));
      A1 = VORUNORD(A1, VMUL(VLD(x + i + VW), Z));
      A2 = VORUNORD(A2, VMUL(VLD(x + i + 2 * VW), Z));
      A3 = VORUNORD(A3, VMUL(VLD(x + i + 3 * VW), Z));
    }
    bad = VANYSET(VOR(VOR(A0, A1), VOR(A2, A3)));
    for (; i < end; i++) bad |= !(x[i] * 0 == 0);
#endif
    if (bad)
      for (i = start; i < end; i++)
        if (!(x[i] * 0 == 0)) return i;
  }
  return -1;
}
