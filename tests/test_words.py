from pathlib import Path


from core.words import Vocab, load_words


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "words.txt"
    path.write_bytes(data)
    return path


def test_builtin_names_ship_with_the_package():
    words = load_words(None)
    assert len(set(words)) >= 25_000
    assert all(w.isalpha() and w == w.lower() for w in words)
    assert Vocab.from_words(words).size == 27


def test_blank_lines_whitespace_crlf_and_bom_are_ignored(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbf  emma \r\n\r\n\n olivia\r\n   \n")
    assert load_words(path) == ["emma", "olivia"]


def test_vocab_is_sorted_with_boundary_first():
    vocab = Vocab.from_words(["bca", "ab"])
    assert vocab.chars == "abc" and vocab.size == 4 and vocab.itos(0) == "." and vocab.itos(1) == "a"
