# Byte-compiling the method lists when the package is built. R compiles the
# functions bound in a namespace, not functions held in a list, and the
# methods of the optimizer objects (object.R) live in lists: uncompiled,
# `$step()` on a small variable costs almost twice as much. Here, first in
# the collation order, because optimizer.R and loss-scale.R call it at the
# top level.
compiled <- function(fns) lapply(fns, compiler::cmpfun)
