# Kill-and-resume trials for callback_backup_and_restore(): many runs of
# minimize() in child R processes are killed with SIGKILL at random moments
# (during steps and during checkpoint writes), started again with the same
# call until they finish, and compared bit for bit with runs that were never
# interrupted. Prints trials / kills (and how many landed inside a checkpoint
# write, seen by the temporary file they left) / resumes / identical.
#
# Usage: Rscript tools/kill-resume.R [trials] [seed]   (from the package
# directory, rmsprop installed; R_LIBS=... to pick the library; needs callr)
args <- commandArgs(trailingOnly = TRUE)
trials <- if (length(args) >= 1L) as.integer(args[[1]]) else 50L
seed <- if (length(args) >= 2L) as.integer(args[[2]]) else 1L
if (!requireNamespace("callr", quietly = TRUE)) stop("needs the callr package")
source("tests/testthat/helper-kill.R")

configs <- kill_configs()
cat(sprintf("reference runs (%d configurations) ...\n", length(configs)))
refs <- lapply(configs, kill_reference)
for (i in seq_along(configs)) {
  r <- refs[[i]]$result
  cat(sprintf("  config %d: %d steps, %d epochs, %d learning rates, save_freq = %s, %.1f s: %s\n",
              i, r$steps, r$epochs, length(unique(r$history$learning_rate)),
              format(configs[[i]]$save_freq), refs[[i]]$seconds, r$message))
}
set.seed(seed)
tot <- c(trials = 0, kills = 0, resumes = 0, torn_writes = 0, identical = 0,
         checkpoint_left = 0)
for (t in seq_len(trials)) {
  i <- (t - 1L) %% length(configs) + 1L
  r <- kill_trial(configs[[i]], refs[[i]], max_kills = sample(1:4, 1))
  tot <- tot + c(1, r$kills, r$resumes, r$torn_writes, r$identical, r$checkpoint_left)
  if (!r$identical) cat(sprintf("  trial %d (config %d): NOT identical\n", t, i))
  if (t %% 10L == 0L) cat(sprintf("  %d trials done\n", t))
}
cat(sprintf(paste("%d trials, %d kills (%d inside a checkpoint write), %d resumes,",
                  "%d identical, %d checkpoints left behind\n"),
            tot[["trials"]], tot[["kills"]], tot[["torn_writes"]], tot[["resumes"]],
            tot[["identical"]], tot[["checkpoint_left"]]))
quit(status = if (tot[["identical"]] == tot[["trials"]]) 0L else 1L)
