-- The catalog service's schema (`catalog`): categories, products and their search
-- document. Applied by the service at start-up; never edited once released: change it
-- with a new numbered file.

CREATE TABLE categories (
    slug        text COLLATE "C" PRIMARY KEY
                CONSTRAINT categories_slug_format CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        text NOT NULL CONSTRAINT categories_name_length CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    -- `prod_` + the UUIDv7 in simple form: byte order is creation order, so the "C"
    -- collation makes the id a cheap, stable tie-breaker for every sort.
    id              text COLLATE "C" PRIMARY KEY
                    CONSTRAINT products_id_format CHECK (id ~ '^prod_[0-9a-f]{32}$'),
    sku             text NOT NULL CONSTRAINT products_sku_key UNIQUE
                    CONSTRAINT products_sku_format CHECK (sku ~ '^[A-Z0-9][A-Z0-9-]{1,39}$'),
    name            text NOT NULL CONSTRAINT products_name_length CHECK (length(name) BETWEEN 1 AND 200),
    description     text NOT NULL DEFAULT '',
    -- Integer minor units of an ISO 4217 currency; never a float.
    price_amount    bigint NOT NULL
                    CONSTRAINT products_price_range CHECK (price_amount BETWEEN 1 AND 1000000000),
    price_currency  text NOT NULL CONSTRAINT products_currency_format CHECK (price_currency ~ '^[A-Z]{3}$'),
    category        text COLLATE "C" NOT NULL
                    CONSTRAINT products_category_fkey REFERENCES categories (slug),
    image_url       text,
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Optimistic concurrency: every change adds one; the ETag is "<id>-v<version>".
    version         bigint NOT NULL DEFAULT 1,
    -- The search document: the name weighs more (A) than the description (B), so a
    -- name match ranks above a description match.
    search          tsvector GENERATED ALWAYS AS (
                        setweight(to_tsvector('english', name), 'A')
                        || setweight(to_tsvector('english', description), 'B')
                    ) STORED
);

CREATE INDEX products_search_idx ON products USING gin (search);
-- The listing's keyset orders (only active products are listed).
CREATE INDEX products_newest_idx ON products (created_at DESC, id DESC) WHERE active;
CREATE INDEX products_price_idx ON products (price_amount, id) WHERE active;
CREATE INDEX products_category_idx ON products (category);

-- A projection of the inventory's `inventory.stock.updated` events: how many units of
-- a SKU can be sold. `revision` increases with every change of the SKU, so an older
-- update arriving late is ignored. A SKU without a row has never been stocked.
CREATE TABLE availability (
    sku         text PRIMARY KEY,
    available   bigint NOT NULL,
    revision    bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
