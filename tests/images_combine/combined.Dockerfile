# The same three steps combined into one RUN.
FROM layerlab-test/busybox:base
RUN mkdir -p /opt/tool && head -c 300000 /dev/zero | tr '\0' 'a' > /opt/tool/archive.bin \
 && cd /opt/tool && cp archive.bin unpacked.bin && echo built > version.txt \
 && rm /opt/tool/archive.bin && chmod 600 /opt/tool/version.txt
