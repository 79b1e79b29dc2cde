# Builds malicious tar archives for the files-driver safety tests.
# usage: python3 evil-tar.py <case> <outside-dir>   (the tar goes to stdout)
import io
import sys
import tarfile

case, outside = sys.argv[1], sys.argv[2]
buf = io.BytesIO()
tf = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)


def add_dir(name):
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    tf.addfile(ti)


def add_file(name, data=b"pwned\n"):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    tf.addfile(ti, io.BytesIO(data))


def add_link(name, target, kind=tarfile.SYMTYPE):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = target
    ti.mode = 0o777
    tf.addfile(ti)


# Every case starts with harmless entries, so a partial extraction would leave something behind.
add_dir("./")
add_file("./ok.txt", b"harmless\n")

if case == "dotdot":
    add_file("../escape-dotdot.txt")
elif case == "dotdot-then-more":
    # Refused while the rest is still streaming in: the refusal, not the broken pipe it causes
    # upstream, is what restore must report.
    add_file("../escape-first.txt")
    add_file("./big.bin", bytes(range(256)) * (64 * 1024 * 4))
elif case == "dotdot-nested":
    add_dir("./a/")
    add_file("./a/../../escape-nested.txt")
elif case == "absolute":
    add_file(outside + "/abs-victim.txt")
elif case == "symlink-abs-write-through":
    add_link("./evil", outside)
    add_file("./evil/through-abs.txt")
elif case == "symlink-up-write-through":
    add_link("./up", "..")
    add_file("./up/escape-up.txt")
elif case == "symlink-deep-write-through":
    add_link("./deep", "../../../../../../../.." + outside)
    add_file("./deep/through-deep.txt")
elif case == "symlink-under-symlink":
    add_link("./d", outside)
    add_link("./d/planted", "/etc/passwd")
elif case == "symlink-dotdot-name":
    add_link("../planted-link", "/etc")
elif case == "symlink-absolute-name":
    add_link(outside + "/planted-abs-link", "/etc")
elif case == "symlink-replaces-dir":
    add_dir("./x/")
    add_file("./x/f.txt")
    add_link("./x", outside)
elif case == "hardlink-abs":
    add_link("./hl", outside + "/victim.txt", tarfile.LNKTYPE)
    add_file("./hl")
elif case == "hardlink-dotdot":
    add_link("./hl", "../outside/victim.txt", tarfile.LNKTYPE)
    add_file("./hl")
elif case == "device":
    ti = tarfile.TarInfo("./null")
    ti.type = tarfile.CHRTYPE
    ti.devmajor, ti.devminor = 1, 3
    tf.addfile(ti)
else:
    sys.exit("unknown case " + case)

tf.close()
sys.stdout.buffer.write(buf.getvalue())
