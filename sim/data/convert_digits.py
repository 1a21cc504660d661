"""Converts scikit-learn's digits dataset (1,797 8x8 images of handwritten digits, UCI ML
hand-written digits, test set of Alpaydin and Kaynak, shipped inside scikit-learn) into
`digits.bin`, the fixed-layout file that `gradwire simulate` embeds. Run once; the output is
committed.

    pip download --no-deps --only-binary=:all: scikit-learn -d /tmp/skl
    python3 convert_digits.py /tmp/skl/scikit_learn-*.whl

Layout of digits.bin: the 8 bytes b"GWDIGIT1", u32 little-endian sample count, then per sample
64 pixel bytes (0..=16, row-major) and one label byte (0..=9), in the dataset's order.
"""

import gzip
import io
import struct
import sys
import zipfile


def main() -> None:
    with zipfile.ZipFile(sys.argv[1]) as wheel:
        text = gzip.decompress(wheel.read("sklearn/datasets/data/digits.csv.gz")).decode()
    rows = [line.split(",") for line in text.strip().splitlines()]
    out = io.BytesIO()
    out.write(b"GWDIGIT1" + struct.pack("<I", len(rows)))
    for row in rows:
        values = [int(float(v)) for v in row]
        assert len(values) == 65 and all(0 <= v <= 16 for v in values[:64]) and 0 <= values[64] <= 9
        out.write(bytes(values))
    with open("digits.bin", "wb") as f:
        f.write(out.getvalue())
    print(f"{len(rows)} samples written to digits.bin")


if __name__ == "__main__":
    main()
