/* Offline stand-in for the bootstrap-toc script that pkgdown's template
 * loads from a CDN (tools/site.sh builds a site that needs no network).
 * pkgdown.js calls Toc.init({$nav, $scope}); this fills the page's
 * "On this page" nav with links to the headings in $scope, nesting each
 * heading under the nearest shallower one (two levels, which is what the
 * site's stylesheet shows), with the classes Bootstrap's scrollspy expects.
 */
window.Toc = {
  init: function (options) {
    var $ = window.jQuery;
    var $nav = options.$nav;
    if (!$nav || !$nav.length) return;
    var entries = [];
    options.$scope.each(function () {
      var $h = $(this);
      var id = this.id || $h.parent().attr("id");
      if (!id || $h.closest("[data-toc-skip]").length) return;
      var $text = $h.clone();
      $text.find(".anchor, .hidden, [aria-hidden='true']").remove();
      entries.push({ level: Number(this.tagName.substring(1)), id: id,
                     text: $.trim($text.text()) });
    });
    if (!entries.length) return;
    var top = Math.min.apply(null, entries.map(function (e) { return e.level; }));
    var $list = $('<ul class="nav nav-pills flex-column"></ul>');
    var $sub = null;
    entries.forEach(function (e) {
      var $item = $('<li class="nav-item"></li>').append(
        $('<a class="nav-link"></a>').attr("href", "#" + e.id).text(e.text));
      if (e.level === top || !$sub) {
        $list.append($item);
        $sub = $('<ul class="nav nav-pills flex-column"></ul>').appendTo($item);
      } else if (e.level === top + 1) {
        $sub.append($item);
      }
    });
    $list.find("ul:empty").remove();
    $nav.append($list);
  }
};
