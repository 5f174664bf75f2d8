"""Render the sample PDFs in this folder from the text below, with PyMuPDF only.

The samples let a fresh clone run the README's first command with no other files.
Run `python examples/make_samples.py` after editing the text; the output is
deterministic apart from PDF timestamps, which are fixed here.
"""

from __future__ import annotations

from pathlib import Path

import pymupdf

HERE = Path(__file__).resolve().parent

KOREAN_TITLE = "한글의 역사와 원리"
KOREAN = [
    ("h1", KOREAN_TITLE),
    (
        "p",
        "이 문서는 한글이 만들어진 배경과 글자의 원리, 그리고 오늘날의 쓰임을 간단히 정리한 자료이다.",
    ),
    ("h2", "1. 창제 배경"),
    (
        "p",
        "한글은 조선의 제4대 임금인 세종대왕이 1443년에 창제하였다. 당시 백성들은 한자를 배우기 "
        "어려워 자신의 뜻을 글로 나타내지 못하는 경우가 많았다. 세종은 누구나 쉽게 배워 날마다 쓸 수 "
        "있는 문자를 만들고자 하였고, 그 결과 소리를 그대로 적을 수 있는 새 문자가 탄생하였다.",
    ),
    (
        "p",
        "새 문자는 1446년 음력 9월 상순에 『훈민정음』이라는 책으로 반포되었다. 훈민정음이라는 "
        "이름은 '백성을 가르치는 바른 소리'라는 뜻이다. 이 책의 해례본에는 글자를 만든 원리와 "
        "사용법이 자세히 설명되어 있으며, 해례본은 1997년 유네스코 세계기록유산으로 등재되었다.",
    ),
    ("h2", "2. 글자의 원리"),
    (
        "p",
        "훈민정음은 처음에 자음 17자와 모음 11자, 모두 28자로 이루어져 있었다. 자음의 기본자인 "
        "ㄱ, ㄴ, ㅁ, ㅅ, ㅇ은 소리를 낼 때 발음 기관의 모양을 본떠 만들었다. 예를 들어 ㄱ은 혀뿌리가 "
        "목구멍을 막는 모양을, ㄴ은 혀끝이 윗잇몸에 닿는 모양을 본뜬 것이다. 기본자에 획을 더해 "
        "소리가 세지는 글자를 만들었는데, 이를 가획의 원리라고 한다.",
    ),
    (
        "p",
        "모음은 하늘(·), 땅(ㅡ), 사람(ㅣ)을 본뜬 세 기본자를 서로 합쳐 만들었다. 이렇게 적은 수의 "
        "기본자에서 나머지 글자를 체계적으로 만들어 낸 점 때문에 한글은 매우 과학적인 문자로 "
        "평가받는다. 글자는 초성, 중성, 종성을 모아 한 음절을 이루도록 쓴다.",
    ),
    ("h2", "3. 오늘날의 한글"),
    (
        "p",
        "시간이 흐르면서 네 글자(ㆍ, ㅿ, ㆆ, ㆁ)가 쓰이지 않게 되어, 현대 한국어에서는 자음 14자와 "
        "모음 10자, 모두 24자를 기본으로 사용한다. '한글'이라는 이름은 20세기 초 국어학자 주시경이 "
        "널리 쓰기 시작한 것으로 알려져 있으며, '큰 글' 또는 '하나뿐인 글'이라는 뜻을 담고 있다.",
    ),
    (
        "p",
        "대한민국은 훈민정음 반포를 기념하여 매년 10월 9일을 한글날로 정하고 있으며, 한글날은 "
        "2013년부터 다시 공휴일이 되었다. 북한에서는 1월 15일을 조선글날로 기념한다. 한글은 배우기 "
        "쉬운 문자이기 때문에 한국의 문맹률은 세계적으로 매우 낮은 편이다.",
    ),
    ("h2", "4. 디지털 시대의 한글"),
    (
        "p",
        "한글은 자모를 조합해 음절을 만드는 구조 덕분에 휴대전화 자판에서도 적은 수의 키로 빠르게 "
        "입력할 수 있다. 유니코드에는 현대 한글 음절 11,172자가 미리 조합된 형태로 들어 있다. 이 "
        "숫자는 초성 19개, 중성 21개, 종성 28개(받침 없음 포함)를 곱한 값이다.",
    ),
    (
        "p",
        "최근에는 대형 언어 모델도 한국어를 잘 다루게 되었지만, 띄어쓰기와 조사 때문에 토큰화가 "
        "영어보다 까다롭다. 같은 내용을 적어도 한국어 문장은 영어 문장보다 더 많은 토큰으로 나뉘는 "
        "경우가 많아, 문서 검색과 요약 시스템은 언어별 토큰 수를 고려해 문서를 나누어야 한다.",
    ),
]

ENGLISH_TITLE = "The James Webb Space Telescope"
ENGLISH = [
    ("h1", ENGLISH_TITLE),
    (
        "p",
        "This short document describes the James Webb Space Telescope (JWST): its mission, its "
        "design, where it operates and what it has observed so far.",
    ),
    ("h2", "1. Mission and launch"),
    (
        "p",
        "The James Webb Space Telescope is an infrared space observatory built by NASA together "
        "with the European Space Agency (ESA) and the Canadian Space Agency (CSA). It was "
        "launched on 25 December 2021 on an Ariane 5 rocket from Kourou in French Guiana. The "
        "telescope is named after James E. Webb, who led NASA from 1961 to 1968 during the Apollo "
        "programme. Its science goals include observing the first galaxies that formed after the "
        "Big Bang, studying how stars and planets form, and measuring the atmospheres of planets "
        "around other stars.",
    ),
    ("h2", "2. Design"),
    (
        "p",
        "The primary mirror is 6.5 metres across and is made of 18 hexagonal segments of "
        "beryllium coated with a thin layer of gold, which reflects infrared light very well. "
        "Because the mirror was too large to fit inside the rocket, it was folded for launch and "
        "unfolded in space. A five-layer sunshield about the size of a tennis court protects the "
        "instruments from the heat of the Sun, the Earth and the Moon, keeping them below 50 "
        "kelvin (about minus 223 degrees Celsius).",
    ),
    (
        "p",
        "Webb carries four science instruments: the Near-Infrared Camera (NIRCam), the "
        "Near-Infrared Spectrograph (NIRSpec), the Mid-Infrared Instrument (MIRI) and the "
        "Near-Infrared Imager and Slitless Spectrograph (NIRISS) with its Fine Guidance Sensor. "
        "MIRI needs to be even colder than the others and has its own cryocooler that brings it "
        "to about 7 kelvin.",
    ),
    ("h2", "3. Orbit"),
    (
        "p",
        "Webb does not orbit the Earth like the Hubble Space Telescope. It orbits the Sun near "
        "the second Lagrange point (L2), about 1.5 million kilometres from the Earth, in the "
        "direction opposite the Sun. At L2 the telescope can keep the Sun, the Earth and the Moon "
        "behind its sunshield at all times. The trip to L2 took about a month, and the telescope "
        "was commissioned over the following months. Its fuel is expected to last for more than "
        "twenty years, because the launch was so precise that little fuel was needed for course "
        "corrections.",
    ),
    ("h2", "4. First results"),
    (
        "p",
        "The first full-colour images were released on 12 July 2022. They included SMACS 0723, a "
        "deep field showing thousands of distant galaxies, the Carina Nebula, Stephan's Quintet "
        "and the Southern Ring Nebula, together with a spectrum of the exoplanet WASP-96b that "
        "showed the signature of water vapour. Since then Webb has found some of the most "
        "distant galaxies ever seen, formed only a few hundred million years after the Big Bang, "
        "and has detected carbon dioxide in the atmosphere of the exoplanet WASP-39b.",
    ),
    ("h2", "5. Comparison with Hubble"),
    (
        "p",
        "Hubble observes mainly in visible and ultraviolet light, while Webb observes in the "
        "infrared. Infrared light passes through clouds of dust that block visible light, and "
        "light from the most distant galaxies is stretched into the infrared by the expansion of "
        "the universe. Webb's mirror collects about six times more light than Hubble's 2.4-metre "
        "mirror, so the two telescopes complement each other rather than one replacing the other.",
    ),
]

CSS = """
body { font-size: 14pt; line-height: 1.35; }
h1 { font-size: 22pt; margin-bottom: 10pt; }
h2 { font-size: 16pt; margin-top: 12pt; margin-bottom: 4pt; }
p { margin-bottom: 6pt; }
"""


def render(blocks: list[tuple[str, str]], title: str, out: Path, lang: str) -> None:
    """Flow the blocks over A4 pages, with the title in the PDF metadata."""
    body = "".join(f"<{tag}>{text}</{tag}>" for tag, text in blocks)
    story = pymupdf.Story(html=f'<body lang="{lang}">{body}</body>', user_css=CSS)
    tmp = out.with_suffix(".tmp.pdf")
    writer = pymupdf.DocumentWriter(str(tmp))
    page = pymupdf.paper_rect("a4")
    frame = page + (60, 60, -60, -60)
    more = True
    while more:
        device = writer.begin_page(page)
        more, _ = story.place(frame)
        story.draw(device)
        writer.end_page()
    writer.close()
    with pymupdf.open(tmp) as doc:
        doc.subset_fonts()  # embed only the glyphs used: the CJK font is megabytes otherwise
        stamp = "D:20261123000000Z"
        doc.set_metadata(
            {"title": title, "author": "adaptsum", "creationDate": stamp, "modDate": stamp}
        )
        doc.save(out, garbage=3, deflate=True, no_new_id=True)
    tmp.unlink()


def main() -> None:
    """Write both samples next to this file."""
    render(KOREAN, KOREAN_TITLE, HERE / "hangul-ko.pdf", "ko")
    render(ENGLISH, ENGLISH_TITLE, HERE / "webb-telescope-en.pdf", "en")
    for name in ("hangul-ko.pdf", "webb-telescope-en.pdf"):
        with pymupdf.open(HERE / name) as doc:
            print(f"{name}: {doc.page_count} pages")


if __name__ == "__main__":
    main()
