// footfall's tracker extras (docs/TRACKER.md): outbound links, file downloads, tagged
// events and form submissions, as Plausible's script extensions of those names. The
// tracker loads this file (next to itself) only when one of them is on, and this file
// sends through the tracker's footfall() and reads its options with footfall.opt.
(function (w, d) {
  var ff = w.footfall, opt = ff.opt, attr = ff.attr, l = w.location;
  var out = opt('outbound-links'), files = opt('file-downloads'), tagged = opt('tagged-events');
  // Plausible's file types; file-types (or data-file-types) replaces the list,
  // add-file-types adds to it.
  var types = ((attr('add-file-types') || '') + ',' + (attr('file-types') || attr('data-file-types') || 'pdf,xlsx,docx,txt,rtf,csv,exe,key,pps,ppt,pptx,7z,pkg,rar,gz,zip,avi,mov,mp4,mpeg,wmv,midi,mp3,wav,wma,dmg')).split(',');

  // Plausible's tagged events: class="plausible-event-name=Signup plausible-event-plan=pro"
  // (or name--Signup; + for a space) and plausible-revenue-amount / -currency. Returns
  // the event's options with its name in n, or nothing for an untagged element.
  function tag(el) {
    var o = {props: {}}, m;
    [].forEach.call((tagged && el.classList) || [], function (c) {
      if (m = c.match(/plausible-(event|revenue)-(.+)(=|--)(.+)/)) {
        if (m[1] == 'revenue') (o.revenue = o.revenue || {})[m[2]] = m[4];
        else if (m[2].toLowerCase() == 'name') o.n = m[4].replace(/\+/g, ' ');
        else o.props[m[2]] = m[4].replace(/\+/g, ' ');
      }
    });
    return o.n && o;
  }

  // A click (or middle click). On a tagged element, or inside one up to three levels
  // down: its event (with the url of a link it is or is in), but not inside a form,
  // whose submission counts instead. Else on a link to another host: an outbound link;
  // else on a link to a file: a download (its url without the query).
  function click(e) {
    var t = e.target, i = 0, a, g, f;
    if (e.type == 'auxclick' && e.button != 1) return;
    for (; t && i++ < 4; t = t.parentNode) {
      f = f || t.tagName == 'FORM';
      a = a || t.tagName == 'A' && t.href && t;
      g = g || tag(t);
    }
    if (g) return f || ff(g.n, (a && (g.props.url = a.href), g));
    a = e.target.closest && e.target.closest('a[href]');
    if (!a || !a.pathname) return;
    var x = a.pathname.split('.').pop().toLowerCase();
    if (out && a.host && a.host != l.host) ff('Outbound Link: Click', {props: {url: a.href}});
    else if (files && x && types.indexOf(x) >= 0) ff('File Download', {props: {url: a.href.split('?')[0]}});
  }

  d.addEventListener('click', click);
  d.addEventListener('auxclick', click);
  // A tagged form (or a form in a tagged element) sends its event when it is submitted;
  // with form-submissions, every other form sends Form: Submission.
  d.addEventListener('submit', function (e) {
    var g = tag(e.target) || tag(e.target.parentNode);
    if (g) ff(g.n, g);
    else if (opt('form-submissions')) ff('Form: Submission');
  });
})(window, document);
