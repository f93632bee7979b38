/* The one compilation unit holding stb_image's implementation, cut down to PNG and to
 * decoding from memory (io/image.c reads the file itself, to name it in errors). */
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
/* A second guard behind io/image.c's own check of the header's dimensions. */
#define STBI_MAX_DIMENSIONS 32768
#include <stb/stb_image.h>
