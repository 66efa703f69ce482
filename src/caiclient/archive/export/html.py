"""``html``: a self-contained offline site: ``index.html`` (every chat, and a search across
all of them), ``search-index.js`` (the text the search runs over) and one page per chat
under ``chats/``. No file refers to the network; styles and scripts are inline.

On a chat page every candidate of a turn is in the page; the primary one is shown and
``‹ ›`` buttons flip through the others (without JavaScript all of them are shown).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html import escape

from ._turns import chronological, decode_turn, encode

__all__ = ["ChatLink", "render_chat", "render_index", "render_search_index"]

_CSS = """
body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:0 auto;padding:1rem;color:#222}
.meta{color:#666}.turn{border-radius:.6rem;padding:.6rem .9rem;margin:.8rem 0;background:#f2f2f5}
.turn.human{background:#e3effd;margin-left:3rem}.turn header{font-size:.85rem;color:#555}
.cand{white-space:pre-wrap}.swipes{font-size:.85rem;color:#555}.swipes button{cursor:pointer}
#results li{margin:.4rem 0}.snippet{color:#444}mark{background:#ffe58a}
table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:left}
"""

_SWIPE_JS = """
document.querySelectorAll('.turn').forEach(function(t){
  var c=Array.prototype.slice.call(t.querySelectorAll('.cand'));if(c.length<2)return;
  var i=c.findIndex(function(e){return !e.hidden});var pos=t.querySelector('.pos');
  function show(k){c[i].hidden=true;i=(k+c.length)%c.length;c[i].hidden=false;
    pos.textContent=(i+1)+'/'+c.length;}
  t.querySelector('.prev').onclick=function(){show(i-1)};
  t.querySelector('.next').onclick=function(){show(i+1)};
});
"""

_SEARCH_JS = """
(function(){
  var box=document.getElementById('q'),out=document.getElementById('results'),
      count=document.getElementById('count'),lower=null;
  function run(){
    var q=box.value.trim().toLowerCase();out.innerHTML='';
    if(!q){count.textContent='';return;}
    if(!lower)lower=CAI_TURNS.map(function(t){return t[3].toLowerCase()});
    var n=0;
    for(var k=0;k<CAI_TURNS.length;k++){
      var at=lower[k].indexOf(q);if(at<0)continue;n++;if(n>200)continue;
      var t=CAI_TURNS[k],chat=CAI_CHATS[t[0]],li=document.createElement('li'),
          a=document.createElement('a'),s=document.createElement('span');
      a.href=chat[0]+'#t-'+t[1];a.textContent=chat[1];
      var from=Math.max(0,at-40),text=t[3];
      s.className='snippet';
      s.appendChild(document.createTextNode(' — '+t[2]+': '+(from?'…':'')+text.slice(from,at)));
      var m=document.createElement('mark');m.textContent=text.slice(at,at+q.length);
      s.appendChild(m);s.appendChild(document.createTextNode(text.slice(at+q.length,at+q.length+60)));
      li.appendChild(a);li.appendChild(s);out.appendChild(li);
    }
    count.textContent=n+(n===1?' match':' matches')+(n>200?' (first 200 shown)':'');
  }
  box.addEventListener('input',run);run();
})();
"""


@dataclass(frozen=True)
class ChatLink:
    """One chat as the index lists it; ``href`` is relative to the site's root."""

    href: str
    title: str
    character: str
    created: str
    turns: int
    note: str = ""


def _page(title: str, body: str, script: str = "") -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style>"
        "<noscript><style>.cand[hidden]{display:block}.swipes{display:none}</style></noscript>"
        f"</head><body>{body}<script>{script}</script></body></html>\n"
    )


def _turn_html(raw: bytes) -> str:
    turn = decode_turn(raw)
    candidates, index = chronological(turn)
    side = "human" if turn.author.is_human else "char"
    pin = " · 📌" if turn.is_pinned else ""
    when = (turn.create_time or "")[:16].replace("T", " ")
    parts = [
        f'<article class="turn {side}" id="t-{escape(turn.turn_key.turn_id)}">'
        f"<header><b>{escape(turn.author.name)}</b> <time>{when}</time>{pin}</header>"
    ]
    for number, candidate in enumerate(candidates):
        hidden = "" if number == index else " hidden"
        cid, text = escape(candidate.candidate_id), escape(candidate.raw_content)
        parts.append(f'<div class="cand" data-candidate="{cid}"{hidden}>{text}</div>')
    if len(candidates) > 1:
        parts.append(
            '<div class="swipes"><button class="prev" type="button">‹</button> '
            f'<span class="pos">{index + 1}/{len(candidates)}</span> '
            '<button class="next" type="button">›</button></div>'
        )
    parts.append("</article>")
    return "".join(parts)


def render_chat(link: ChatLink, turns: Iterable[bytes]) -> Iterator[bytes]:
    """A chat's page; ``turns``: raw turns, oldest first."""
    head, tail = _page(link.title, "\x00", _SWIPE_JS).split("\x00")
    note = f" · {escape(link.note)}" if link.note else ""
    yield (
        f'{head}<nav><a href="../index.html">← all chats</a></nav>'
        f'<h1>{escape(link.title)}</h1><p class="meta">{escape(link.character)} · '
        f"started {escape(link.created[:10])}{note}</p><main>"
    ).encode()
    batch: list[str] = []
    for raw in turns:
        batch.append(_turn_html(raw))
        if len(batch) >= 200:
            yield "".join(batch).encode()
            batch = []
    yield ("".join(batch) + "</main>" + tail).encode()


def render_index(
    links: Iterable[ChatLink], *, title: str = "Character.AI archive"
) -> Iterator[bytes]:
    rows = [
        f'<tr><td><a href="{escape(link.href)}">{escape(link.title)}</a></td>'
        f"<td>{escape(link.character)}</td><td>{escape(link.created[:10])}</td>"
        f"<td>{link.turns}</td><td>{escape(link.note)}</td></tr>"
        for link in links
    ]
    body = (
        f"<h1>{escape(title)}</h1>"
        '<p><input id="q" type="search" placeholder="Search every chat…" size="40" '
        'aria-label="search"> <span id="count"></span></p><ol id="results"></ol>'
        "<table><thead><tr><th>chat</th><th>character</th><th>started</th><th>turns</th>"
        f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        '<script src="search-index.js"></script>'
    )
    yield _page(title, body, _SEARCH_JS).encode()


def render_search_index(chats: Iterable[tuple[ChatLink, Iterable[bytes]]]) -> Iterator[bytes]:
    """``search-index.js``: ``CAI_CHATS`` [href, title] and ``CAI_TURNS`` [chat index,
    turn id, author, text of every candidate] for the index page's search."""
    links: list[list[str]] = []
    yield b"var CAI_TURNS=[\n"
    first = True
    for number, (link, turns) in enumerate(chats):
        links.append([link.href, link.title])
        for raw in turns:
            turn = decode_turn(raw)
            text = "\n".join(c.raw_content for c in chronological(turn)[0])
            entry = encode([number, turn.turn_key.turn_id, turn.author.name, text])
            yield (b"" if first else b",\n") + entry
            first = False
    yield b"\n];\nvar CAI_CHATS=" + encode(links) + b";\n"
