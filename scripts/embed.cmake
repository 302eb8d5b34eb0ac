# cmake -DIN=file -DOUT=file.cc -DSYMBOL=name -P embed.cmake
# Writes `extern "C" const char name[] = {...};` holding IN's bytes and a trailing NUL.
file(READ ${IN} HEX HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," BYTES "${HEX}")
file(WRITE ${OUT} "extern \"C\" const char ${SYMBOL}[] = {${BYTES}0x00};\n")
