# Builds the pkgdown site of a copy of the package, with no network access.
#
#   Rscript tools/site/build.R <package copy> <output dir> <node_modules dir>
#
# pkgdown's Bootstrap 5 template loads icons and a few scripts (headroom,
# clipboard, search, highlighting, the table of contents, MathJax) from CDNs.
# This script writes a copy of that template's head.html in which each of
# them points into the site itself (offline/), copies the files there from
# the npm packages tools/site.sh installed (the same versions the template
# names), and uses tools/site/toc.js for the table of contents. Any other
# outside URL in the template is an error, so a new pkgdown cannot quietly
# bring one back. Nothing else asks the network: pkgdown.internet = FALSE
# keeps pkgdown from looking the package up on CRAN.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3) stop("usage: build.R <package copy> <output dir> <node_modules dir>")
pkg_dir <- normalizePath(args[[1]], mustWork = TRUE)

# The template below has no MathJax (it would come from a CDN): no help page
# may use LaTeX.
rd <- list.files(file.path(pkg_dir, "man"), pattern = "[.]Rd$", full.names = TRUE)
math <- rd[vapply(rd, function(f) any(grepl("\\\\(eqn|deqn)\\{", readLines(f, warn = FALSE))), NA)]
if (length(math)) stop("help pages with LaTeX (\\eqn, \\deqn) need MathJax, which this offline site leaves out: ",
                       paste(basename(math), collapse = ", "), call. = FALSE)

out_dir <- args[[2]]
modules <- normalizePath(args[[3]], mustWork = TRUE)
tools_dir <- file.path(pkg_dir, "tools", "site")

options(pkgdown.internet = FALSE)

# CDN address pattern -> npm package, and the folder of that package that
# the address's path (after the version) is relative to.
cdn <- list(
  list(pattern = "font-awesome/([^/]+)/(.+)$", npm = "@fortawesome/fontawesome-free", dir = ""),
  list(pattern = "headroom/([^/]+)/(.+)$", npm = "headroom.js", dir = "dist"),
  list(pattern = "clipboard\\.js/([^/]+)/(.+)$", npm = "clipboard", dir = "dist"),
  list(pattern = "fuse\\.js/([^/]+)/(.+)$", npm = "fuse.js", dir = "dist"),
  list(pattern = "autocomplete\\.js/([^/]+)/(.+)$", npm = "autocomplete.js", dir = "dist"),
  list(pattern = "mark\\.js/([^/]+)/(.+)$", npm = "mark.js", dir = "dist")
)

npm_version <- function(npm) {
  desc <- file.path(modules, npm, "package.json")
  if (!file.exists(desc)) stop("npm package ", npm, " is not installed in ", modules)
  line <- grep('^\\s*"version"\\s*:', readLines(desc, warn = FALSE), value = TRUE)[1]
  sub('^\\s*"version"\\s*:\\s*"([^"]+)".*$', "\\1", line)
}

template_dir <- file.path(tempfile("pkgdown-template-"))
dir.create(template_dir)
head_in <- system.file("BS5", "templates", "head.html", package = "pkgdown", mustWork = TRUE)
lines <- readLines(head_in, warn = FALSE)

# Drop MathJax (these help pages have no mathematics; the checks in
# tools/site.sh fail if one gains some) and the old-IE shim in a comment.
lines <- lines[!grepl("mathjax", lines, ignore.case = TRUE)]
ie <- grep("<!--\\[if lt IE 9\\]>", lines)
if (length(ie)) {
  ie_end <- grep("<!\\[endif\\]-->", lines)
  ie_end <- ie_end[ie_end >= ie[1]][1]
  lines <- lines[-seq(ie[1], ie_end)]
}

copies <- list()   # local path under offline/ -> source file or folder
for (i in seq_along(lines)) {
  line <- lines[i]
  m <- regmatches(line, regexpr('(src|href)="(https?|file)://[^"]+"', line))
  if (!length(m)) next
  url <- sub('^(src|href)="([^"]+)"$', "\\2", m)
  if (grepl("bootstrap-toc", url)) {
    local <- "offline/toc.js"
    copies[[local]] <- file.path(tools_dir, "toc.js")
  } else if (grepl("googletagmanager", url)) {
    next  # only inside {{#ganalytics}}, which this site does not set
  } else {
    hit <- Filter(function(x) grepl(x$pattern, url), cdn)
    if (!length(hit)) stop("pkgdown's head.html loads ", url,
                           ": add it to tools/site/build.R so the site keeps working offline")
    hit <- hit[[1]]
    parts <- regmatches(url, regexec(hit$pattern, url))[[1]]
    version <- parts[2]
    have <- npm_version(hit$npm)
    if (!identical(have, version)) {
      stop(sprintf("pkgdown's head.html wants %s %s, tools/site.sh installed %s",
                   hit$npm, version, have))
    }
    rel <- parts[3]
    local <- file.path("offline", hit$npm, rel)
    copies[[local]] <- file.path(modules, hit$npm, hit$dir, rel)
    if (hit$npm == "@fortawesome/fontawesome-free") {
      # the style sheets load their fonts from ../webfonts/
      copies[[file.path("offline", hit$npm, "webfonts")]] <- file.path(modules, hit$npm, "webfonts")
    }
  }
  line <- sub(url, paste0("{{#site}}{{root}}{{/site}}", local), line, fixed = TRUE)
  line <- gsub('\\s+integrity="[^"]*"', "", line)
  line <- gsub('\\s+crossorigin="[^"]*"', "", line)
  lines[i] <- line
}
# Without favicons a browser asks for /favicon.ico and logs the 404 as a
# console error; an empty icon says there is none.
lines <- c("{{^has_favicons}}<link rel=\"icon\" href=\"data:,\">{{/has_favicons}}", lines)
writeLines(lines, file.path(template_dir, "head.html"))

# pkgdown 2.0.7 writes <img src="" class="logo"> on every page but the home
# page when the package has no logo (the section tests the logo list, which
# is never empty, instead of its path); a browser reports that empty image as
# broken. Test the path instead.
templates <- system.file("BS5", "templates", package = "pkgdown", mustWork = TRUE)
for (file in list.files(templates, pattern = "^content-.*[.]html$", full.names = TRUE)) {
  text <- readLines(file, warn = FALSE)
  fixed <- sub('{{#logo}}<img src="{{logo.src}}"', '{{#logo.src}}<img src="{{logo.src}}"', text, fixed = TRUE)
  if (identical(fixed, text)) next
  fixed <- sub('{{/logo}}', '{{/logo.src}}', fixed, fixed = TRUE)
  writeLines(fixed, file.path(template_dir, basename(file)))
}

# Every help topic must be in _pkgdown.yml's reference index, or pkgdown
# stops. A topic added since the index was last edited goes under "Other
# topics" (in this copy only) and is reported, so the site still builds.
index_missing <- function() {
  pkg <- pkgdown::as_pkgdown(pkg_dir)
  msg <- tryCatch({
    pkgdown:::data_reference_index(pkg)
    NULL
  }, error = function(e) conditionMessage(e))
  if (is.null(msg)) return(character())
  hit <- regmatches(msg, regexpr("Missing topics: [^\n]*", msg))
  if (!length(hit)) stop(msg, call. = FALSE)
  trimws(strsplit(sub("Missing topics: ", "", hit), ",")[[1]])
}
missing_topics <- index_missing()
if (length(missing_topics)) {
  yml <- file.path(pkg_dir, "_pkgdown.yml")
  config <- yaml::read_yaml(yml)
  config$reference <- c(config$reference,
                        list(list(title = "Other topics", contents = as.list(missing_topics))))
  yaml::write_yaml(config, yml)
  cat("index: not in _pkgdown.yml's reference index, listed under 'Other topics':",
      paste(missing_topics, collapse = ", "), "\n")
}

if (dir.exists(out_dir)) {
  if (length(list.files(out_dir, all.files = TRUE, no.. = TRUE)) &&
      !file.exists(file.path(out_dir, "pkgdown.yml"))) {
    stop(out_dir, " exists and is not a pkgdown site: refusing to overwrite it")
  }
  unlink(out_dir, recursive = TRUE)
}

pkgdown::build_site(
  pkg_dir,
  override = list(destination = normalizePath(out_dir, mustWork = FALSE),
                  template = list(bootstrap = 5, path = template_dir)),
  preview = FALSE, new_process = TRUE, install = TRUE
)

for (local in names(copies)) {
  from <- copies[[local]]
  to <- file.path(out_dir, local)
  dir.create(dirname(to), recursive = TRUE, showWarnings = FALSE)
  ok <- if (dir.exists(from)) file.copy(from, dirname(to), recursive = TRUE) else file.copy(from, to)
  if (!all(ok)) stop("could not copy ", from, " to ", to)
}
cat("site built in", normalizePath(out_dir), "\n")
