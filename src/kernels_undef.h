/* kernels_undef.h: forgets the vector macros of one instantiation of
 * kernels_body.h, so kernels.c can define them again for the next one. */
#undef VT
#undef VW
#undef SUF
#undef KATTR
#undef VLD
#undef VST
#undef VSET1
#undef VADD
#undef VSUB
#undef VMUL
#undef VDIV
#undef VSQRT
#undef VMAXLO
#undef VMINHI
#undef VORUNORD
#undef VANYSET
#undef VOR
#undef VPREFETCH
