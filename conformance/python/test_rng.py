#!/usr/bin/env python3
"""Checks the seeded-generator test vectors of FORMAT.md §9.6 (no core codec uses §9 yet)."""
M=(1<<64)-1
def sm(state):
    state=(state+0x9E3779B97F4A7C15)&M; z=state
    z=((z^(z>>30))*0xBF58476D1CE4E5B9)&M
    z=((z^(z>>27))*0x94D049BB133111EB)&M
    return state, z^(z>>31)
def mix64(x): return sm(x)[1]
def fnv(b):
    h=0xCBF29CE484222325
    for c in b: h=((h^c)*0x100000001B3)&M
    return h
def cs(s,name,c): return mix64(s ^ mix64(fnv(name.encode()) ^ mix64(c)))
rotl=lambda x,k: ((x<<k)|(x>>(64-k)))&M
class X:
    def __init__(s, seed=None, raw=None):
        if raw: s.s=list(raw); return
        st=seed; s.s=[]
        for _ in range(4): st,o=sm(st); s.s.append(o)
    def next(s):
        a=s.s; r=(rotl((a[1]*5)&M,7)*9)&M; t=(a[1]<<17)&M
        a[2]^=a[0]; a[3]^=a[1]; a[1]^=a[2]; a[0]^=a[3]; a[2]^=t; a[3]=rotl(a[3],45); return r
    def below(s,b):
        if b==0: return 0
        th=((1<<64)-b)%b
        while True:
            m=s.next()*b
            if (m&M)>=th: return m>>64
    def unit(s):
        import struct
        v=(s.next()>>40)*2.0**-24
        return struct.unpack('<I',struct.pack('<f',v))[0]
def main():
    st = 0
    outs = []
    for _ in range(3):
        st, o = sm(st)
        outs.append(o)
    assert outs == [0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f]
    assert mix64(1) == 0x910a2dec89025cc1
    assert fnv(b"fc1.weight") == 0x0fc5ab63896269ed
    assert cs(0, "fc1.weight", 0) == 0xf131771262dd3e06
    assert cs(42, "fc1.weight", 0) == 0x80736970310426de
    assert cs(42, "fc1.weight", 1) == 0xe02bf1e1632a579e
    assert cs(42, "fc2.bias", 7) == 0x4beb564683a9d8fd
    x = X(raw=[1, 2, 3, 4])
    assert [x.next() for _ in range(4)] == [11520, 0, 1509978240, 1215971899390074240]
    x = X(42)
    assert [x.next() for _ in range(4)] == [0x15780b2e0c2ec716, 0x6104d9866d113a7e, 0xae17533239e499a1, 0xecb8ad4703b360a1]
    x = X(42)
    assert [x.below(10) for _ in range(8)] == [0, 3, 6, 9, 9, 7, 7, 8]
    x = X(42)
    assert [x.unit() for _ in range(3)] == [0x3dabc058, 0x3ec209b2, 0x3f2e1753]
    print("FORMAT.md §9.6: all generator vectors reproduced")


if __name__ == "__main__":
    main()
