// footfall's tracker (docs/TRACKER.md). footfall serves it at /js/script.js with the
// comment lines and indentation removed, so keep every comment on a line of its own.
(function (w, d) {
  var s = d.currentScript, l = w.location, n = w.navigator, h = w.history;
  var src = (s && s.src) || '';
  // A script tag attribute; with data- prefixed.
  var raw = function (k) { return s && s.getAttribute(k) };
  var attr = function (k) { return raw('data-' + k) };
  // An option is a data attribute or, as Plausible's script.outbound-links.js, a part of the file name.
  var opt = function (k) { return attr(k) != null || src.indexOf('.' + k + '.') > 0 };
  var api = attr('api') || src.replace(/\/js\/[^/]*$/, '') + '/api/event';
  var dom = attr('domain') || l.hostname.replace(/^www\./, '');
  var hashMode = opt('hash'), cookie = opt('cookie'), manual = opt('manual');
  // Plausible's script.local.js (or data-include-localhost): also localhost and automated browsers.
  var local = opt('local') || opt('include-localhost');
  // The current page view (URL, props) and its engagement: running since, engaged ms so
  // far, document height, deepest scroll in px, deepest scroll already sent.
  var cur, props, last, started, run = 0, time = 0, height = 0, maxpx = 0, sent = -1;
  var es, tok;

  function ignored() {
    try {
      var o = w.localStorage;
      if (o.footfall_ignore == 'true' || o.plausible_ignore == 'true') return 1;
    } catch (e) {}
    return !local && ((n.webdriver || w.Cypress || w._phantom || w.__nightmare) && !w.__plausible ||
      /^localhost$|^127(\.\d+){0,2}\.\d+$|^\[::1?\]$/.test(l.hostname) || l.protocol == 'file:');
  }

  // fetch with keepalive outlives the page (engagement on hide, outbound clicks); text/plain
  // avoids a CORS preflight; the default credentials send first-party cookies only to
  // the same origin (cookie mode). The callback gets {status} or {error}, or nothing
  // when the event is ignored (Boolean is the no-op).
  function send(p, o, then) {
    var cb = (o && o.callback) || Boolean;
    if (ignored()) return cb();
    p.d = dom;
    if (hashMode) p.h = 1;
    if (cookie) p.c = 1;
    w.fetch && fetch(api, {method: 'POST', headers: {'Content-Type': 'text/plain'}, keepalive: true, body: JSON.stringify(p)}).then(function (r) {
      then && then(r);
      cb({status: r.status});
    }, function (e) { cb({error: e}) });
  }

  // Plausible's pageview-props: event-<key>="value" attributes of the script tag are
  // props of every event (the event's own props win).
  function pp(p) {
    s && s.getAttributeNames().forEach(function (a) {
      if (!a.indexOf('event-')) (p = p || {})[a.slice(6)] = p[a.slice(6)] || raw(a);
    });
    return p;
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

  // The page of an event: the u (or url) option, made absolute, or this page.
  function url(o) { return new URL(o.u || o.url || l.href, l.href).href }

  // Plausible's data-include / data-exclude: comma lists of paths (with the fragment in
  // hash mode), * within a segment, ** across segments.
  function matches(k) {
    return (attr(k) || '').split(',').some(function (p) {
      return p && new RegExp('^' + p.trim().replace(/\*\*/g, '.*').replace(/([^.])\*/g, '$1[^\\s/]*') + '/?$').test(l.pathname + (hashMode ? l.hash : ''));
    });
  }

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
    cur = url(o);
    props = pp(o.props || o.meta);
    // An excluded page sends neither its page view nor its engagement.
    if (attr('include') && !matches('include') || matches('exclude')) {
      cur = 0;
      return o.callback && o.callback();
    }
    send({n: 'pageview', u: cur, r: d.referrer || null, p: props}, o, function (r) { channel(r.headers.get('x-footfall-live')) });
  }

  function ff(name, o) {
    if (name == 'pageview') return page(1, o);
    o = o || {};
    send({n: name, u: url(o), r: d.referrer || null, p: pp(o.props || o.meta), $: o.revenue, i: o.interactive}, o);
  }

  // Loads a script next to this one (live.js, extras.js).
  function load(name, then) {
    var e = d.createElement('script');
    e.src = src.replace(/[^/]*$/, name);
    e.onload = then;
    d.head.appendChild(e);
  }

  // Live invitations: the server names this visitor's channel in a response header;
  // live.js, loaded then, keeps the channel and shows the invitations.
  function channel(t) {
    if (!t) return;
    tok = t;
    if (ff.live) ff.live(t, api);
    else if (!es) {
      es = 1;
      load('live.js', function () { ff.live(tok, api) });
    }
  }

  function start() {
    if (started || /^[hp]/.test(d.visibilityState) || d.prerendering) return;
    started = 1;
    manual || page(1);
    var t = w.performance && performance.getEntriesByType && performance.getEntriesByType('navigation')[0];
    if (opt('404') && t && t.responseStatus == 404) ff('404', {props: {path: l.pathname}});
  }

  // SPA navigation, as Plausible's script: history.pushState and popstate (a new path),
  // or in hash mode every hashchange.
  var nav = function () { manual || page(hashMode) };
  if (hashMode) w.addEventListener('hashchange', nav);
  else {
    var push = h.pushState;
    h.pushState = function () {
      var r = push.apply(this, arguments);
      nav();
      return r;
    };
    w.addEventListener('popstate', nav);
  }
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

  var q = [].concat((w.footfall || {}).q || [], (w.plausible || {}).q || []);
  w.footfall = w.plausible = ff;
  // Outbound links, file downloads, tagged events and form submissions are in extras.js,
  // loaded only when one of them is on.
  ff.opt = opt;
  ff.attr = raw;
  if (['outbound-links', 'file-downloads', 'tagged-events', 'form-submissions'].some(opt)) load('extras.js');
  // A page opened in the background or prerendered counts once it is shown.
  d.addEventListener('prerenderingchange', start);
  d.addEventListener('visibilitychange', start);
  start();
  for (var i = 0; i < q.length; i++) ff.apply(w, q[i]);
})(window, document);
