"""The web page (``leerdossier web``): Starlette, Jinja2 templates in Dutch, the NL Design
System's components and htmx served from the package. A front end over the application
layer, like the command line: it calls nothing below ``connector.app``."""
