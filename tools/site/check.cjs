// Checks the built pkgdown site in a real headless browser (Debian's
// chromium, driven by playwright-core):
//
//   node tools/site/check.cjs <site dir> <node_modules dir> <screenshot dir>
//
// The site is served from 127.0.0.1 by a small static server in this script;
// every request elsewhere is refused and counted as a failure, so a page
// that needs the network fails here. For each checked page: the page loads
// (HTTP 200), nothing is logged to the console as an error, no script throws,
// every request succeeds, every image is loaded and has a size, the expected
// text and at least the expected number of images are there (and on the
// reference index the search box suggests pages); a full-page PNG screenshot
// is saved. Then every relative link and image of every page of the site
// must point to a file that exists, and no paragraph may start in lower
// case right after another (a sentence cut in two). Prints one line per
// check and ends with "N passed, N failed"; exits 1 on any failure.

"use strict";
const fs = require("fs");
const path = require("path");
const http = require("http");

const [siteDir, modules, shotDir] = process.argv.slice(2);
if (!siteDir || !modules || !shotDir) {
  console.error("usage: check.cjs <site dir> <node_modules dir> <screenshot dir>");
  process.exit(2);
}
const { chromium } = require(path.join(modules, "playwright-core"));
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";

const pages = [
  { name: "home", path: "index.html", images: 1,
    text: ["Gradients first, variables second", "A training loop"] },
  { name: "reference index", path: "reference/index.html", images: 0,
    text: ["The optimizer", "Training loops", "Learning-rate schedules", "optimizer_rmsprop()"],
    search: "schedule" },
  { name: "optimizer_rmsprop", path: "reference/optimizer_rmsprop.html", images: 0,
    text: ["RMSprop optimizer", "step(grads, variables)", "Gradients come first", "Examples"],
    selector: "pre code" },
  { name: "plot.rmsprop_fit (example figure)", path: "reference/plot.rmsprop_fit.html", images: 1,
    text: ["Plot the loss curve"] },
  { name: "vignette", path: "articles/training.html", images: 2,
    text: ["Training models with rmsprop", "Gradients by hand", "Saving and resuming",
           "Computing the gradients on workers"],
    selector: "#toc a.nav-link" },
];

const mime = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css",
  ".json": "application/json", ".png": "image/png", ".svg": "image/svg+xml",
  ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".eot": "application/vnd.ms-fontobject",
  ".xml": "application/xml", ".txt": "text/plain", ".map": "application/json", ".ico": "image/x-icon",
};

const root = path.resolve(siteDir);
const server = http.createServer((req, res) => {
  let rel = decodeURIComponent(new URL(req.url, "http://x").pathname);
  if (rel.endsWith("/")) rel += "index.html";
  const file = path.join(root, rel);
  if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
    return;
  }
  res.writeHead(200, { "content-type": mime[path.extname(file).toLowerCase()] || "application/octet-stream" });
  fs.createReadStream(file).pipe(res);
});

let passed = 0, failed = 0;
function report(ok, what, details) {
  if (ok) passed++; else failed++;
  console.log(`${ok ? "PASS" : "FAIL"}  ${what}${!ok && details ? "\n      " + details : ""}`);
}

function htmlFiles(dir) {
  let out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out = out.concat(htmlFiles(p));
    else if (e.name.endsWith(".html")) out.push(p);
  }
  return out;
}

// Relative href/src attributes of every page must name a file of the site.
function checkLinks() {
  const broken = [];
  let count = 0;
  for (const file of htmlFiles(root)) {
    const html = fs.readFileSync(file, "utf8").replace(/<!--[\s\S]*?-->/g, "");
    for (const m of html.matchAll(/\s(?:href|src)="([^"]*)"/g)) {
      let ref = m[1];
      if (!ref || /^(#|[a-z][a-z0-9+.-]*:|\/\/|\{\{)/i.test(ref)) continue;
      ref = ref.replace(/[?#].*$/, "");
      if (!ref) continue;
      count++;
      let target = path.resolve(path.dirname(file), decodeURIComponent(ref));
      if (ref.endsWith("/")) target = path.join(target, "index.html");
      if (!fs.existsSync(target)) broken.push(`${path.relative(root, file)} -> ${m[1]}`);
    }
  }
  report(broken.length === 0, `relative links and images of ${htmlFiles(root).length} pages (${count} references)`,
         broken.slice(0, 20).join("\n      "));
}

async function checkPage(browser, base, spec) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  await page.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1" || url.protocol === "data:") return route.continue();
    problems.push(`outside request refused: ${route.request().url()}`);
    return route.abort();
  });
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`script error: ${err.message}`));
  page.on("requestfailed", (req) => {
    if (!problems.some((p) => p.includes(req.url()))) {
      problems.push(`request failed: ${req.url()} (${req.failure() && req.failure().errorText})`);
    }
  });
  page.on("response", (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`);
  });

  const response = await page.goto(base + spec.path, { waitUntil: "load" });
  if (!response || response.status() !== 200) problems.push(`page answered ${response && response.status()}`);
  await page.waitForLoadState("networkidle");
  await page.waitForTimeout(300);

  const images = await page.evaluate(() => Array.from(document.images).map((img) => ({
    src: img.getAttribute("src").slice(0, 80), ok: img.complete && img.naturalWidth > 0,
    width: img.naturalWidth, height: img.naturalHeight })));
  for (const img of images) if (!img.ok) problems.push(`image not loaded: ${img.src}`);
  if (images.length < spec.images) problems.push(`${images.length} images, expected at least ${spec.images}`);

  const text = await page.evaluate(() => document.body.innerText);
  for (const t of spec.text) if (!text.includes(t)) problems.push(`text missing: "${t}"`);
  if (spec.selector) {
    const n = await page.locator(spec.selector).count();
    if (n === 0) problems.push(`nothing matches ${spec.selector}`);
  }

  if (spec.search) {
    // the search box loads search.json when focused, then suggests pages
    await page.click("#search-input");
    await page.waitForTimeout(500);
    await page.keyboard.type(spec.search, { delay: 30 });
    await page.waitForTimeout(800);
    const hits = await page.locator(".aa-suggestion").count();
    if (hits === 0) problems.push(`search for "${spec.search}" suggests nothing`);
    else spec.name += `, search "${spec.search}": ${hits} suggestions`;
  }

  const shot = path.join(shotDir, spec.path.replace(/\//g, "_").replace(/\.html$/, ".png"));
  await page.screenshot({ path: shot, fullPage: true });
  const sizes = images.filter((i) => i.ok).map((i) => `${i.width}x${i.height}`).join(", ");
  report(problems.length === 0,
         `${spec.name} (${spec.path}): ${images.length} images${sizes ? " [" + sizes + "]" : ""}, screenshot ${shot}`,
         problems.join("\n      "));
  await context.close();
}

// A paragraph that starts in lower case right after another one is almost
// always a sentence that pkgdown cut in two (it does that in a Value section
// at a source line that ends in code).
function checkSplitParagraphs() {
  const found = [];
  // the help pages, the articles and the home page (not authors.html, whose
  // citation may start with a lower-case name)
  const files = htmlFiles(root).filter((f) => /^(reference|articles)\//.test(path.relative(root, f)) ||
                                              path.relative(root, f) === "index.html");
  for (const file of files) {
    const html = fs.readFileSync(file, "utf8");
    for (const m of html.matchAll(/<\/p>\s*<p>([a-z][^<]{0,50})/g)) {
      found.push(`${path.relative(root, file)}: "${m[1].replace(/\s+/g, " ")}..."`);
    }
  }
  report(found.length === 0, "no paragraph cut in two (a paragraph starting in lower case after another)",
         found.join("\n      "));
}

(async () => {
  fs.mkdirSync(shotDir, { recursive: true });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}/`;
  let browser;
  try {
    browser = await chromium.launch({ executablePath: browserPath, headless: true,
                                      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    report(true, `browser started: ${browserPath} ${browser.version()}`);
    for (const spec of pages) {
      try {
        await checkPage(browser, base, spec);
      } catch (err) {
        report(false, `${spec.name} (${spec.path})`, String(err && err.message || err));
      }
    }
  } catch (err) {
    report(false, `browser start (${browserPath})`, String(err && err.message || err));
  } finally {
    if (browser) await browser.close();
    server.close();
  }
  checkLinks();
  checkSplitParagraphs();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
