// footfall's live invitations (docs/TRACKER.md): the tracker loads this file when the
// server announces a live channel for the visitor. It keeps the channel open and shows
// each invitation as a small dismissible prompt.
(function (w, d) {
  var es, tok;
  w.footfall.live = function (t, api) {
    // Same visitor and the channel still open (it closes e.g. in the back/forward cache).
    if (t == tok && es.readyState < 2) return;
    tok = t;
    es && es.close();
    es = new EventSource(api.replace(/event$/, 'live/visitor') + '?t=' + encodeURIComponent(t));
    es.addEventListener('invite', function (m) { show(JSON.parse(m.data)) });
  };
  // Leaving the page (or entering the back/forward cache) closes the channel at once, so
  // it never holds one of the browser's few connections to footfall; the page view of a
  // restored page opens it again.
  w.addEventListener('pagehide', function () { es && es.close() });

  function show(v) {
    var b = d.getElementById('footfall-invite');
    var el = function (tag, css) {
      var x = d.createElement(tag);
      x.style.cssText = css;
      b.appendChild(x);
      return x;
    };
    b && b.remove();
    b = d.createElement('div');
    b.id = 'footfall-invite';
    b.setAttribute('role', 'dialog');
    b.style.cssText = 'position:fixed;bottom:16px;right:16px;z-index:2147483647;max-width:320px;padding:14px 36px 14px 16px;background:#fff;color:#111;border-radius:8px;box-shadow:0 4px 20px rgba(0,0,0,.25);font:15px/1.4 system-ui,sans-serif';
    // Text only: an invitation never injects markup into the page.
    el('p', 'margin:0 0 8px').textContent = v.text;
    if (/^https?:/i.test(v.url || '')) {
      var a = el('a', 'color:#2563eb;font-weight:600');
      a.href = v.url;
      a.target = '_blank';
      a.rel = 'noopener';
      a.textContent = v.label || 'Open';
    }
    var x = el('button', 'position:absolute;top:6px;right:8px;border:0;background:none;font-size:20px;line-height:1;cursor:pointer;color:#666');
    x.textContent = '\u00d7';
    x.setAttribute('aria-label', 'Dismiss');
    x.onclick = function () { b.remove() };
    d.body.appendChild(b);
  }
})(window, document);
