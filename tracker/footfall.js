// footfall's tracker (docs/TRACKER.md). footfall serves it at /js/script.js with the
// comment lines and indentation removed, so keep every comment on a line of its own.
(function (w, d) {
  var s = d.currentScript, l = w.location, n = w.navigator, h = w.history;
  var src = (s && s.src) || '';
  var attr = function (k) { return s && s.getAttribute('data-' + k) };
  // An option is a data attribute or, as Plausible's script.outbound-links.js, a part of the file name.
  var opt = function (k) { return attr(k) != null || src.indexOf('.' + k + '.') > 0 };
  var api = attr('api') || src.replace(/\/js\/[^/]*$/, '') + '/api/event';
  var dom = attr('domain') || l.hostname.replace(/^www\./, '');
  var hashMode = opt('hash'), cookie = opt('cookie'), manual = opt('manual');
  var out = opt('outbound-links'), files = opt('file-downloads');
  var types = (attr('file-types') || 'pdf,xlsx,docx,txt,rtf,csv,exe,key,pps,ppt,pptx,7z,pkg,rar,gz,zip,avi,mov,mp4,mpeg,wmv,midi,mp3,wav,wma,dmg').split(',');
  // The current page view (URL, props) and its engagement: running since, engaged ms so
  // far, document height, deepest scroll in px, deepest scroll already sent.
  var cur, props, last, started, run = 0, time = 0, height = 0, maxpx = 0, sent = -1;
  var es, tok;

  function ignored() {
    try {
      if (w.localStorage.footfall_ignore == 'true' || w.localStorage.plausible_ignore == 'true') return 1;
    } catch (e) {}
    return n.webdriver || w.Cypress ||
      (!opt('include-localhost') && !opt('local') && (/^localhost$|^127(\.\d+){0,2}\.\d+$|^\[::1?\]$/.test(l.hostname) || l.protocol == 'file:'));
  }

  // fetch with keepalive outlives the page (engagement on hide, outbound clicks); text/plain
  // avoids a CORS preflight; the default credentials send first-party cookies only to
  // the same origin (cookie mode).
  function send(p, o, then) {
    o = o || {};
    if (ignored()) return o.callback && o.callback();
    p.d = dom;
    if (hashMode) p.h = 1;
    if (cookie) p.c = 1;
    w.fetch && fetch(api, {method: 'POST', headers: {'Content-Type': 'text/plain'}, keepalive: true, body: JSON.stringify(p)}).then(function (r) {
      then && then(r);
      o.callback && o.callback({status: r.status});
    }, function (e) { o.callback && o.callback({error: e}) });
  }

  function docH() { return Math.max(d.body ? d.body.scrollHeight : 0, d.documentElement.scrollHeight) }
  function depth() {
    var v = w.innerHeight;
    return height <= v ? height : w.scrollY + v;
  }
  function engaged() { return time + (run ? Date.now() - run : 0) }

  // An engagement event when there is news: deeper scroll, or 3 s more engaged time.
  function engage() {
    var t = engaged();
    if (cur && (sent < maxpx || t >= 3000)) {
      sent = maxpx;
      time = run = 0;
      send({n: 'engagement', u: cur, p: props, e: t, sd: Math.round(maxpx / height * 100)});
    }
  }
  // Engaged time runs while the page is visible and focused.
  function vis() {
    if (d.visibilityState == 'visible' && d.hasFocus()) run = run || Date.now();
    else {
      time = engaged();
      run = 0;
      engage();
    }
  }

  function abs(u) { return new URL(u, l.href).href }

  function page(force, o) {
    var k = l.pathname + (hashMode ? l.hash : '');
    if (!force && k == last) return;
    last = k;
    engage();
    o = o || {};
    height = docH();
    maxpx = depth();
    sent = -1;
    time = 0;
    run = Date.now();
    cur = o.u ? abs(o.u) : l.href;
    props = o.props || {};
    send({n: 'pageview', u: cur, r: d.referrer || null, p: o.props}, o, function (r) { channel(r.headers.get('x-footfall-live')) });
  }

  function ff(name, o) {
    if (name == 'pageview') return page(1, o);
    o = o || {};
    send({n: name, u: o.u ? abs(o.u) : l.href, r: d.referrer || null, p: o.props, $: o.revenue, i: o.interactive}, o);
  }

  // Live invitations: the server names this visitor's channel in a response header;
  // live.js, loaded then, keeps the channel and shows the invitations.
  function channel(t) {
    if (!t) return;
    tok = t;
    if (ff.live) ff.live(t, api);
    else if (!es) {
      es = d.createElement('script');
      es.src = src.replace(/[^/]*$/, 'live.js');
      es.onload = function () { ff.live(tok, api) };
      d.head.appendChild(es);
    }
  }

  function click(e) {
    var a = e.target.closest && e.target.closest('a[href]');
    if (!a || !a.pathname || (e.type == 'auxclick' && e.button != 1)) return;
    var p = a.pathname, name = files && p.indexOf('.') > 0 && types.indexOf(p.split('.').pop().toLowerCase()) >= 0 ? 'File Download'
      : out && a.host && a.host != l.host ? 'Outbound Link: Click' : 0;
    name && ff(name, {props: {url: a.href}});
  }

  function start() {
    if (started || d.visibilityState == 'prerender' || d.prerendering) return;
    started = 1;
    manual || page(1);
    var nav = w.performance && performance.getEntriesByType && performance.getEntriesByType('navigation')[0];
    if (opt('404') && nav && nav.responseStatus == 404) ff('404', {props: {path: l.pathname}});
  }

  ['pushState', 'replaceState'].forEach(function (m) {
    var f = h[m];
    if (f) h[m] = function () {
      var r = f.apply(this, arguments);
      manual || page();
      return r;
    };
  });
  w.addEventListener('popstate', function () { manual || page() });
  if (hashMode) w.addEventListener('hashchange', function () { manual || page() });
  // A page restored from the back/forward cache is a new page view.
  w.addEventListener('pageshow', function (e) { e.persisted && !manual && page(1) });
  d.addEventListener('visibilitychange', vis);
  w.addEventListener('blur', vis);
  w.addEventListener('focus', vis);
  d.addEventListener('scroll', function () {
    height = docH();
    maxpx = Math.max(maxpx, depth());
  });
  // Content loaded after the page grows the document: measure it for 3 s.
  w.addEventListener('load', function () {
    var i = 0, t = setInterval(function () { height = docH(); ++i > 14 && clearInterval(t) }, 200);
  });
  if (out || files) {
    d.addEventListener('click', click);
    d.addEventListener('auxclick', click);
  }

  var q = [].concat((w.footfall || {}).q || [], (w.plausible || {}).q || []);
  w.footfall = w.plausible = ff;
  // A prerendered page counts once it is shown.
  d.addEventListener('prerenderingchange', start);
  d.addEventListener('visibilitychange', start);
  start();
  for (var i = 0; i < q.length; i++) ff.apply(w, q[i]);
})(window, document);
